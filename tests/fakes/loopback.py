"""The lifecycle the loopback fakes share: a threaded HTTP server on 127.0.0.1, started and stopped by the test."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler that answers HTTP 200 with a JSON document and keeps test output quiet."""

    protocol_version = "HTTP/1.1"

    def reply_json(self, document: Any, status: int = 200, content_type: str = "application/json") -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")  # no pooled connection outlives stop()
        self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (http.server's naming)
        pass


class LoopbackServer:
    """Start with ``start()`` or ``with``; ``stop()`` takes the endpoint down (connections refused).
    A restart comes back on the same port. Subclasses give their request handler class."""

    _port = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), self.handler_class())
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self._port}"

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, the TENCENTCLOUD_*_ENDPOINT form."""
        return f"http://{self.host}"
