"""A fake of TDMQ for CMQ's HTTP data-flow API on loopback: SendMessage, ReceiveMessage, DeleteMessage.

Requests are checked as Tencent documents them (1111/46415, 406/5906; tencentyun/cmq-python-sdk
``cmq/sign.py``): a form-encoded ``POST /v2/index.php`` carrying ``Action``, ``SecretId``, ``Timestamp``
(within 5 minutes), ``Nonce``, ``SignatureMethod`` (HmacSHA1 or HmacSHA256), ``Token`` when the fake
requires one, and ``Signature``, recomputed here from the key the fake knows for the SecretId over
``POST`` + Host + path + ``?`` + the other parameters sorted by name. Answers are HTTP 200 with JSON
``{"code", "message", "requestId", ...}``.

Queues behave as CMQ queues do: a received message is invisible for the queue's visibility timeout and
comes back after it unless deleted with its current receipt handle (each receive issues a new one).
The fake's clock can be moved on (``advance``), so tests need not sleep. ``throttle(n)`` answers the next
``n`` requests with the throttling error (module code 10250, "qps throttling", 406/19325).

    with FakeCmq(credentials={"AKIDrole": "key"}, require_token="tok") as cmq:
        cmq.create_queue("timpush-dead-letters")
        ... TENCENTCLOUD_TDMQ_ENDPOINT=cmq.endpoint ...
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.loopback import JsonHandler, LoopbackServer

PATH = "/v2/index.php"
MAX_MSG_BYTES = 1024 * 1024  # TDMQ for CMQ messages are up to 1 MB
THROTTLED = (4000, "(10250)qps throttling")  # the top-level code with it is not documented [I]
NO_MESSAGE = (7000, "(10200)no message")
AUTH_FAILED = 4100


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Stored:
    msg_id: str
    body: str
    visible_at: float
    receipt: str = ""
    dequeue_count: int = 0
    enqueue_time: int = field(default_factory=lambda: int(time.time()))


@dataclass
class Queue:
    visibility: float
    messages: list[Stored] = field(default_factory=list)


class FakeCmq(LoopbackServer):
    """Start with ``start()`` or ``with``; ``stop()`` takes it down (connections refused)."""

    def __init__(self, credentials: dict[str, str], require_token: str | None = None) -> None:
        self.credentials = dict(credentials)
        self.require_token = require_token
        self.requests: list[dict[str, str]] = []  # each request's parameters, Signature included
        self._queues: dict[str, Queue] = {}
        self._throttle = 0
        self._offset = 0.0
        self._lock = threading.Lock()

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    # -- test controls ---------------------------------------------------------------------------
    def create_queue(self, name: str, visibility: float = 30.0) -> None:
        with self._lock:
            self._queues[name] = Queue(visibility)

    def put(self, name: str, body: str) -> str:
        """A message sent by someone else (a dead letter the function wrote earlier)."""
        with self._lock:
            return self._store(name, body)

    def bodies(self, name: str) -> list[str]:
        """Every message still in the queue, visible or not, in the order sent."""
        with self._lock:
            return [m.body for m in self._queues[name].messages]

    def throttle(self, count: int) -> None:
        with self._lock:
            self._throttle += count

    def advance(self, seconds: float) -> None:
        """Move the fake's clock on (visibility timeouts run out without sleeping)."""
        with self._lock:
            self._offset += seconds

    def actions(self) -> list[str]:
        with self._lock:
            return [r.get("Action", "") for r in self.requests]

    # -- the service -----------------------------------------------------------------------------
    def answer(self, host: str, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self.requests.append(dict(params))
            self._authenticate(host, params)
            if self._throttle:
                self._throttle -= 1
                raise Refused(*THROTTLED)
            queue = self._queues.get(params.get("queueName", ""))
            if queue is None:
                raise Refused(4440, "(10490)queue is not exist")  # [I]
            action = {"SendMessage": self._send, "ReceiveMessage": self._receive,
                      "DeleteMessage": self._delete}.get(params.get("Action", ""))
            if action is None:
                raise Refused(4000, f"(10280)action {params.get('Action')} is not existed")
            return action(params, queue)

    def _now(self) -> float:
        return time.time() + self._offset

    def _store(self, name: str, body: str) -> str:
        stored = Stored(uuid.uuid4().hex, body, self._now())
        self._queues[name].messages.append(stored)
        return stored.msg_id

    def _send(self, params: dict[str, str], _queue: Queue) -> dict[str, Any]:
        body = params.get("msgBody", "")
        if not body or len(body.encode()) > MAX_MSG_BYTES:
            raise Refused(4000, "(10350)parameter msgBody value or length is out of range")
        return {"msgId": self._store(params["queueName"], body)}

    def _receive(self, _params: dict[str, str], queue: Queue) -> dict[str, Any]:
        now = self._now()
        message = next((m for m in queue.messages if m.visible_at <= now), None)
        if message is None:
            raise Refused(*NO_MESSAGE)
        message.visible_at = now + queue.visibility
        message.receipt = uuid.uuid4().hex
        message.dequeue_count += 1
        return {"msgId": message.msg_id, "msgBody": message.body, "receiptHandle": message.receipt,
                "enqueueTime": message.enqueue_time, "nextVisibleTime": int(message.visible_at),
                "firstDequeueTime": int(now), "dequeueCount": message.dequeue_count}

    def _delete(self, params: dict[str, str], queue: Queue) -> dict[str, Any]:
        handle = params.get("receiptHandle")
        found = [m for m in queue.messages if handle and m.receipt == handle and m.visible_at > self._now()]
        if not found:
            raise Refused(4000, "(10270)receiptHandle is invalid or expired")  # [I]
        queue.messages.remove(found[0])
        return {}

    def _authenticate(self, host: str, params: dict[str, str]) -> None:
        for name in ("Action", "SecretId", "Timestamp", "Nonce", "Signature"):
            if not params.get(name):
                raise Refused(4000, f"(10390)lacked of required parameter {name}")
        if abs(time.time() - int(params["Timestamp"])) > 300:
            raise Refused(AUTH_FAILED, "(10140)the request has expired")
        if self.require_token is not None and params.get("Token") != self.require_token:
            raise Refused(AUTH_FAILED, "(10100)the token is missing or invalid")
        key = self.credentials.get(params["SecretId"])
        if key is None or not hmac.compare_digest(expected_signature(key, host, params), params["Signature"]):
            raise Refused(AUTH_FAILED, "(10110)signature is not matched")


def expected_signature(key: str, host: str, params: dict[str, str]) -> str:
    """What Tencent's data-flow SDK computes, from the documented recipe (written apart from the handler's)."""
    unsigned = {k: v for k, v in params.items() if k != "Signature"}
    text = "POST" + host + PATH + "?" + "&".join(f"{k}={unsigned[k]}" for k in sorted(unsigned))
    method = hashlib.sha256 if params.get("SignatureMethod") == "HmacSHA256" else hashlib.sha1
    return base64.b64encode(hmac.new(key.encode(), text.encode(), method).digest()).decode()


def _handler_for(fake: FakeCmq) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):

        def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            request_id = uuid.uuid4().hex
            try:
                if self.path != PATH:
                    raise Refused(4000, f"(10400)no such path {self.path}")
                doc = {"code": 0, "message": "", **fake.answer(self.headers.get("Host", ""), dict(parse_qsl(raw)))}
            except Refused as exc:
                doc = {"code": exc.code, "message": exc.message}
            self.reply_json({**doc, "requestId": request_id})

    return Handler
