"""The common part of fakes of Tencent Cloud API 3.0 services on loopback, answered like the real ones.

Every answer is HTTP 200 with ``{"Response": {...}}``; failures go in ``Response.Error`` with Code and
Message, as the real endpoints do (API.md section 6). Requests are TC3-HMAC-SHA256 signed by the SDK;
the fake checks the credential scope and, for secret ids it knows, the whole signature. Each request is
recorded so tests can count calls and look at headers (X-TC-Token). A service subclasses ``FakeTencentApi``
with its ``SERVICE``, ``API_VERSION`` and ``actions``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import JsonHandler, LoopbackServer

_AUTH = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)/tc3_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)


class ServiceError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Recorded:
    """One request as the fake saw it (headers lower-cased)."""

    action: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _Calls:
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0


class FakeTencentApi(LoopbackServer):
    """Start with ``start()`` or ``with``; ``stop()`` takes the endpoint down (connections refused)."""

    SERVICE = ""
    API_VERSION = ""

    def __init__(self, credentials: dict[str, str] | None = None, require_token: str | None = None) -> None:
        self.credentials = dict(credentials or {})  # secret id -> secret key; others fail AuthFailure
        self.require_token = require_token
        self._calls = _Calls()
        self._lock = threading.Lock()

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def actions(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        """The service's actions by name: each takes the request body and returns the Response fields."""
        raise NotImplementedError

    # -- test controls ---------------------------------------------------------------------------
    def fail_next(self, code: str, message: str = "injected failure") -> None:
        """The next request answers ``Response.Error`` with this code."""
        with self._lock:
            self._calls.fail_next.append((code, message))

    def set_delay(self, seconds: float) -> None:
        """Answer every request this late (read timeouts)."""
        self._calls.delay = seconds

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._calls.requests)

    def count(self, action: str | None = None) -> int:
        return sum(1 for r in self.requests if action is None or r.action == action)

    def clear_requests(self) -> None:
        with self._lock:
            self._calls.requests.clear()

    # -- the service -----------------------------------------------------------------------------
    def answer(self, headers: dict[str, str], raw_body: bytes) -> dict[str, Any]:
        """The ``Response`` object for one request."""
        action = headers.get("x-tc-action", "")
        body = json.loads(raw_body or b"{}")
        with self._lock:
            self._calls.requests.append(Recorded(action, headers, body))
            injected = self._calls.fail_next.pop(0) if self._calls.fail_next else None
        self._authenticate(headers, raw_body)
        if injected:
            raise ServiceError(*injected)
        if headers.get("x-tc-version") != self.API_VERSION:
            raise ServiceError("InvalidParameterValue", f"unsupported version {headers.get('x-tc-version')}")
        handler = self.actions().get(action)
        if handler is None:
            raise ServiceError("InvalidAction", f"action {action!r} is not supported by this fake")
        return handler(body)

    def _authenticate(self, headers: dict[str, str], raw_body: bytes) -> None:
        match = _AUTH.fullmatch(headers.get("authorization", ""))
        if match is None:
            raise ServiceError("AuthFailure.SignatureFailure", "The Authorization header is not TC3-HMAC-SHA256.")
        timestamp = int(headers.get("x-tc-timestamp", "0"))
        if abs(time.time() - timestamp) > 300:
            raise ServiceError("AuthFailure.SignatureExpire", "The request signature has expired.")
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if match["service"] != self.SERVICE or match["date"] != date or match["signed"] != "content-type;host":
            raise ServiceError("AuthFailure.SignatureFailure", "The credential scope is wrong.")
        if self.require_token is not None and headers.get("x-tc-token") != self.require_token:
            raise ServiceError("AuthFailure.TokenFailure", "The session token is missing or invalid.")
        if self.credentials:
            key = self.credentials.get(match["id"])
            if key is None:
                raise ServiceError("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
            if not hmac.compare_digest(tc3_signature(key, headers, raw_body, date, self.SERVICE), match["signature"]):
                raise ServiceError("AuthFailure.SignatureFailure", "The provided signature does not match.")


def tc3_signature(secret_key: str, headers: dict[str, str], payload: bytes, date: str, service: str) -> str:
    """TC3-HMAC-SHA256 over a POST / with signed headers content-type;host (Tencent's documented scheme)."""
    canonical = "\n".join([
        "POST", "/", "",
        f"content-type:{headers.get('content-type', '')}\nhost:{headers.get('host', '')}\n",
        "content-type;host",
        hashlib.sha256(payload).hexdigest(),
    ])
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(["TC3-HMAC-SHA256", headers.get("x-tc-timestamp", ""), scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])

    def sign(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    signing_key = sign(sign(sign(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    return hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()


def _handler_for(fake: FakeTencentApi) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):

        def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            request_id = str(uuid.uuid4())
            try:
                response = fake.answer(headers, raw)
            except ServiceError as exc:
                response = {"Error": {"Code": exc.code, "Message": exc.message}}
            if fake._calls.delay:
                time.sleep(fake._calls.delay)
            self.reply_json({"Response": {**response, "RequestId": request_id}})

    return Handler

