"""moto in server mode on loopback, counting the API calls it answers.

    server = MotoServer()
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)   # boto3 >= 1.28 sends every service there
    ...
    assert server.count("secretsmanager.GetSecretValue") == 1
    server.stop()

Counting happens in a WSGI wrapper around moto's own application, keyed by the ``X-Amz-Target``
header that the JSON protocols (Secrets Manager, SSM) carry.
"""

from __future__ import annotations

import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(MotoRequestHandler):
    def log_request(self, *_args: Any, **_kwargs: Any) -> None:
        pass


class MotoServer(ThreadedMotoServer):
    """A ThreadedMotoServer on 127.0.0.1 and a free port, with a per-target request counter."""

    def __init__(self, threaded: bool = True) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self._threaded = threaded  # False: one request at a time, so conditional writes are atomic as on AWS
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _server_entry(self) -> None:  # as moto's own, with the app wrapped
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self._ip_address, self._port, self._counting(app), self._threaded,
                                   request_handler=_QuietHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    def _counting(self, app: WsgiApp) -> WsgiApp:
        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            target = environ.get("HTTP_X_AMZ_TARGET")
            if target:
                service, _, action = target.partition(".")
                name = {"AmazonSSM": "ssm", "DynamoDB_20120810": "dynamodb"}.get(service, service)
                with self._lock:
                    self._counts[f"{name}.{action}"] += 1
            return app(environ, start_response)

        return wrapped

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def count(self, target: str) -> int:
        """Calls answered for ``service.Action``, e.g. ``secretsmanager.GetSecretValue``, ``ssm.GetParameter``."""
        with self._lock:
            return self._counts[target]

    def reset(self) -> None:
        """Forget every resource and every count."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310
        _NO_PROXY.open(request, timeout=5).close()
        with self._lock:
            self._counts.clear()
