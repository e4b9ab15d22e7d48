"""A DynamoDB endpoint on loopback that answers what the test scripts: the faults moto does not make.

Each request (JSON protocol, ``X-Amz-Target: DynamoDB_20120810.OPERATION``) takes the next answer of ``script``
(an error code and HTTP status, as DynamoDB sends them) until the script is spent; then it answers as a
successful UpdateItem on an empty item does (``{}``). ``seen`` counts the requests, by operation.

    with FaultyDynamo([("ThrottlingException", 400)] * 3) as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", fake.endpoint)
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler

from tests.fakes.loopback import JsonHandler, LoopbackServer

SERVICE = "com.amazonaws.dynamodb.v20120810"


class FaultyDynamo(LoopbackServer):
    def __init__(self, script: Sequence[tuple[str, int]] = ()) -> None:
        self.script = list(script)
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _next(self, operation: str) -> tuple[str, int] | None:
        with self._lock:
            self.seen[operation] += 1
            return self.script.pop(0) if self.script else None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
                answer = fake._next(operation)
                if answer is None:
                    self.reply_json({})
                    return
                code, status = answer
                self.reply_json({"__type": f"{SERVICE}#{code}", "message": "scripted by the test"}, status,
                                "application/x-amz-json-1.0")

        return Handler
