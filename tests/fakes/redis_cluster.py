"""A real Redis cluster of three masters on loopback, from the same redis-server binary as ``redis_server``.

Each node is a ``RedisServer`` started with ``--cluster-enabled yes`` and a config file of its own in a
temporary folder; the test, not redis-cli, makes it a cluster: each node takes a third of the 16384 slots
(``CLUSTER ADDSLOTS``), the first node meets the others (``CLUSTER MEET``), and the cluster is ready when every
node says ``cluster_state:ok`` and knows every node. ``url`` is the first node's: the way a team gives
ElastiCache's configuration endpoint (any node of the cluster).

A node's cluster bus listens on its port + 10000 (Redis 6.2 has no ``cluster-port``), so ports are picked
below 55536 with both free.
"""

from __future__ import annotations

import random
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.fakes.redis_server import RedisServer

SLOTS = 16384
BUS_OFFSET = 10_000


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_ports(count: int) -> list[int]:
    """Ports whose cluster bus port (+10000) is free too."""
    found: list[int] = []
    while len(found) < count:
        port = random.randint(20_000, 65_535 - BUS_OFFSET)  # noqa: S311  # not for security
        if port not in found and _free(port) and _free(port + BUS_OFFSET):
            found.append(port)
    return found


class RedisCluster:
    def __init__(self, masters: int = 3, password: str | None = None) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="redis-cluster-"))
        self.nodes = [
            RedisServer(password, port=port, args=[
                "--cluster-enabled", "yes", "--cluster-config-file", str(self._folder / f"nodes-{port}.conf"),
                "--cluster-node-timeout", "5000", "--dir", str(self._folder)])  # no dump.rdb in the cwd
            for port in cluster_ports(masters)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def env(self) -> dict[str, str]:
        return {"IM_STATE_STORE": self.url}

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        share = SLOTS // len(self.nodes)
        for index, node in enumerate(self.nodes):
            end = SLOTS if index == len(self.nodes) - 1 else (index + 1) * share
            node.client().execute_command("CLUSTER ADDSLOTS", *range(index * share, end))
        first = self.nodes[0].client()
        for node in self.nodes[1:]:
            first.execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while not all(self._ready(node) for node in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis cluster did not come together in 30 s")
            time.sleep(0.05)

    def _ready(self, node: RedisServer) -> bool:
        info = node.client().execute_command("CLUSTER INFO")  # redis-py parses it into a dict
        return bool(info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == len(self.nodes))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self._folder, ignore_errors=True)

    def client(self) -> redis.RedisCluster:
        first = self.nodes[0]
        return redis.RedisCluster(host="127.0.0.1", port=first.port, password=first.password,
                                  decode_responses=True, socket_timeout=5)

    def reset(self) -> None:
        for node in self.nodes:
            node.reset()

    def commands(self, name: str) -> int:
        """Calls of one command the cluster answered (every node's INFO commandstats)."""
        return sum(node.commands(name) for node in self.nodes)

    def node_of(self, key: str) -> RedisServer:
        """The node that serves ``key``'s slot."""
        slot = int(self.nodes[0].client().execute_command("CLUSTER KEYSLOT", key))
        return self.nodes[min(slot // (SLOTS // len(self.nodes)), len(self.nodes) - 1)]


@contextmanager
def redis_cluster(masters: int = 3, password: str | None = None) -> Iterator[RedisCluster]:
    cluster = RedisCluster(masters, password)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
