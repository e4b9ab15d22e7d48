"""The emulator as a real HTTP server on a background thread, and its Python API.

HTTP/1.1 with Content-Length on every answer, so a pooled ``requests.Session`` keeps its
connection; quiet (no per-request lines on stderr); every connection closed on ``stop``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from handler.im import usersig
from timpush.emulator import admin
from timpush.emulator.clock import Clock
from timpush.emulator.core import EmulatorCore, Reply, Request
from timpush.emulator.faults import Fault
from timpush.emulator.settings import EmulatorSettings

_JOIN_SECONDS = 5.0  # how long stop waits for each connection's thread to finish


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't stall on delayed ACKs
    timeout = 60  # an idle keep-alive connection is closed after this many seconds
    server: _Server

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def _handle(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        if url.path.startswith(admin.PREFIX):
            reply = admin.handle(self.server.core, self.command, url.path, body)
        else:
            query = {name: values[0] for name, values in parse_qs(url.query, keep_blank_values=True).items()}
            reply = self.server.core.serve(Request(self.command, url.path, query, body))
        self._send(reply)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # chunked bodies are not read, so the stream can't be reused
            return b""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: Reply) -> None:
        if reply.drop:
            self.close_connection = True  # the server then closes the socket without a byte sent
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Silent: the request log under /_emulator/requests is the record."""


class _Server(ThreadingHTTPServer):
    """Remembers each open connection and its thread, so ``close_all`` can end them."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], core: EmulatorCore) -> None:
        super().__init__(address, _Handler)
        self.core = core
        self._open: dict[socket.socket, threading.Thread] = {}
        self._open_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open[request] = threading.current_thread()
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.pop(request, None)

    def close_all(self) -> None:
        with self._open_lock:
            open_now = list(self._open.items())
        for sock, _ in open_now:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread waiting for the next request
            except OSError:
                pass  # already closed by the client
        for _, thread in open_now:
            thread.join(_JOIN_SECONDS)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Silent: a client hanging up mid-request is normal (and is what ``drop`` tests provoke)."""


class Emulator:
    """The local IM emulator. ``with Emulator(settings) as emu:`` serves at ``emu.url`` until the block ends."""

    def __init__(
        self,
        settings: EmulatorSettings,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Iterable[Fault] = (),
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self._address = (host, port)
        self._core = EmulatorCore(settings, faults, clock)  # ``clock``: a test's own, shared with the client
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Emulator:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._server = _Server(self._address, self._core)
        self._core.stopping.clear()  # a restarted emulator's slow faults sleep again
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="timpush-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._core.stopping.set()
        server.shutdown()
        server.close_all()
        server.server_close()
        if self._thread is not None:
            self._thread.join(_JOIN_SECONDS)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running emulator (the port bound, when started with 0)."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def usersig(self, identifier: str | None = None, expire: int = 86400) -> str:
        """A UserSig for ``identifier`` (the first admin by default), valid from the emulated now."""
        now = int(self._core.clock().now)
        who = identifier or self.settings.admins[0]
        return usersig.generate(self.settings.sdkappid, self.settings.key, who, expire, now)

    def add_faults(self, faults: Iterable[Fault]) -> list[dict[str, object]]:
        return self._core.add_faults(faults)

    def faults(self) -> list[dict[str, object]]:
        return self._core.faults()

    def clear_faults(self) -> int:
        return self._core.clear_faults()

    def requests(self) -> list[dict[str, object]]:
        return self._core.requests()

    def clear_requests(self) -> int:
        return self._core.clear_requests()

    def advance(self, seconds: float) -> float:
        """Move the emulated clock forward; returns the new emulated now (unix seconds)."""
        return self._core.advance(seconds).now

    def now(self) -> float:
        return self._core.clock().now

    def tasks(self) -> list[dict[str, object]]:
        return self._core.tasks()

    def reset(self) -> None:
        self._core.reset()
