"""A fake of Lambda's runtime API on loopback, for AWS's own runtime interface client (``awslambdaric``).

Speaks the four calls a runtime makes (docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html): ``GET
/2018-06-01/runtime/invocation/next`` (held until the test queues an invocation; answered with the event and
the headers ``Lambda-Runtime-Aws-Request-Id``, ``Lambda-Runtime-Deadline-Ms`` (epoch milliseconds, stamped when
the invocation is handed out, as Lambda does), ``Lambda-Runtime-Invoked-Function-Arn``), ``POST
.../invocation/{id}/response`` and ``.../error`` (202), and ``POST .../init/error``. Each answer is kept with the
epoch millisecond it arrived, so a test compares it with the deadline the function was given.

    with FakeRuntimeApi() as api:            # then run: AWS_LAMBDA_RUNTIME_API=api.host python -m awslambdaric ...
        answer = api.invoke({"Records": [...]}, seconds=6.0)
        assert answer.arrived_ms <= answer.deadline_ms
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import JsonHandler, LoopbackServer

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:timpush-modifier"


@dataclass
class Answer:
    request_id: str
    deadline_ms: int  # the deadline the runtime was given
    arrived_ms: int  # when the function's answer reached the runtime API
    body: Any
    error: bool = False


@dataclass
class _Invocation:
    request_id: str
    event: Any
    seconds: float
    deadline_ms: int = 0


class FakeRuntimeApi(LoopbackServer):
    def __init__(self) -> None:
        self._pending: queue.Queue[_Invocation] = queue.Queue()
        self._handed: dict[str, _Invocation] = {}
        self._answers: queue.Queue[Answer] = queue.Queue()
        self.init_errors: list[Any] = []
        self._lock = threading.Lock()

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def invoke(self, event: Any, seconds: float, wait: float = 60.0) -> Answer:
        """Queue one invocation with ``seconds`` to run and wait for its answer."""
        self._pending.put(_Invocation(str(uuid.uuid4()), event, seconds))
        return self._answers.get(timeout=wait)

    # -- called by the request handler ---------------------------------------------------------------------------

    def next(self) -> _Invocation:
        invocation = self._pending.get()
        invocation.deadline_ms = int(time.time() * 1000 + invocation.seconds * 1000)
        with self._lock:
            self._handed[invocation.request_id] = invocation
        return invocation

    def answered(self, request_id: str, body: bytes, error: bool) -> None:
        arrived = int(time.time() * 1000)
        with self._lock:
            invocation = self._handed.pop(request_id)
        self._answers.put(Answer(request_id, invocation.deadline_ms, arrived, json.loads(body or b"null"), error))


def _handler_for(api: FakeRuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def handle(self) -> None:
            try:
                super().handle()
            except ConnectionError:  # the runtime was stopped while it waited for its next invocation
                pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path != f"{PREFIX}/invocation/next":
                self.send_error(404)
                return
            invocation = api.next()
            payload = json.dumps(invocation.event).encode()
            self.send_response(200)
            for name, value in {"Content-Type": "application/json", "Content-Length": str(len(payload)),
                                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                                "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.removeprefix(PREFIX + "/").split("/")
            if parts == ["init", "error"]:
                api.init_errors.append(json.loads(body or b"null"))
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                api.answered(parts[1], body, parts[2] == "error")
            else:
                self.send_error(404)
                return
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
