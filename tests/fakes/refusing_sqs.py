"""moto's SQS on loopback, refusing chosen ``SendMessageBatch`` entries the way SQS does: in ``Failed``.

moto itself fails a batch entry only for a bad ``DelaySeconds``; real SQS may fail any entry
(``InternalError``, throttling) while the others succeed. This wraps moto's WSGI application: an entry
whose body contains ``marker`` is taken out of the batch before moto sees it and answered as failed,
``times`` times (then it goes through), so a sender's retries and reports can be tested over HTTP.

    with refusing_sqs(marker="1234567893", times=1) as sqs:   # a MotoSqs, plus .refused
        ...
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from tests.fakes.moto_server import DUMMY_ENV, MotoServer, WsgiApp
from tests.fakes.moto_sqs import REGION, MotoSqs

BATCH_TARGET = "AmazonSQS.SendMessageBatch"


class RefusingSqs(MotoServer):
    def __init__(self, marker: str, times: int) -> None:
        super().__init__()
        self.marker = marker
        self.times = times
        self.refused = 0  # entries answered as failed so far

    def _counting(self, app: WsgiApp) -> WsgiApp:
        counted = super()._counting(app)

        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("HTTP_X_AMZ_TARGET") != BATCH_TARGET:
                return counted(environ, start_response)
            return self._batch(counted, environ, start_response)

        return wrapped

    def _batch(self, app: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        failed = []
        kept = []
        for entry in request.get("Entries", []):
            if self.marker in entry.get("MessageBody", "") and self.refused < self.times:
                self.refused += 1
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError",
                               "Message": "refused by the test"})
            else:
                kept.append(entry)
        answer: dict[str, Any] = {"Successful": []}
        if kept:
            answer = self._forward(app, environ, {**request, "Entries": kept})
        answer["Failed"] = [*answer.get("Failed", []), *failed]
        data = json.dumps(answer).encode()
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))])
        return [data]

    @staticmethod
    def _forward(app: WsgiApp, environ: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(request).encode()
        inner = {**environ, "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))}
        answer: dict[str, Any] = json.loads(b"".join(app(inner, lambda *_args: None)))
        return answer


@contextmanager
def refusing_sqs(marker: str, times: int) -> Iterator[tuple[MotoSqs, RefusingSqs]]:
    server = RefusingSqs(marker, times)
    server.start()
    try:
        env = {**DUMMY_ENV, "AWS_ENDPOINT_URL": server.endpoint, "NO_PROXY": "127.0.0.1,localhost",
               "no_proxy": "127.0.0.1,localhost"}
        client = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                       region_name=REGION).client("sqs", endpoint_url=server.endpoint)
        yield MotoSqs(server.endpoint, env, client), server
    finally:
        server.stop()
