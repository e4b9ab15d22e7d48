"""A fake Tencent Cloud SSM (API 3.0, version 2019-09-23) on loopback, answered like the real service.

Every answer is HTTP 200 with ``{"Response": {...}}``; failures go in ``Response.Error`` with Code and
Message, as the real endpoint does (API.md section 6). Requests are TC3-HMAC-SHA256 signed by the SDK;
the fake checks the credential scope and, for secret ids it knows, the whole signature. Each request is
recorded so tests can count fetches and look at headers (X-TC-Token).

    with FakeTencentSSM(credentials={"AKIDtest": "key"}) as ssm:
        ssm.put_secret("im-app-key", "v1", "the-key")
        ... HttpProfile(protocol="http", endpoint=ssm.host) ...
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_VERSION = "2019-09-23"
SERVICE = "ssm"
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
class _Version:
    version_id: str
    create_time: int
    string: str = ""
    binary: str = ""  # base64, as the API carries it


@dataclass
class _State:
    secrets: dict[str, list[_Version]] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    clock: int = 1_700_000_000


class FakeTencentSSM:
    """Start with ``start()`` or ``with``; ``stop()`` takes the endpoint down (connections refused)."""

    def __init__(self, credentials: dict[str, str] | None = None, require_token: str | None = None) -> None:
        self.credentials = dict(credentials or {})  # secret id -> secret key; others fail AuthFailure
        self.require_token = require_token
        self._state = _State()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeTencentSSM:
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler_for(self))
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]  # a restart comes back on the same port
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

    def __enter__(self) -> FakeTencentSSM:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, what HttpProfile(endpoint=...) wants."""
        return f"127.0.0.1:{self._port}"

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, the TENCENTCLOUD_SSM_ENDPOINT form."""
        return f"http://{self.host}"

    # -- test controls ---------------------------------------------------------------------------
    def put_secret(self, name: str, version_id: str, value: str | bytes, create_time: int | None = None) -> None:
        """Add (or overwrite) a version; later puts are newer unless ``create_time`` says otherwise."""
        with self._lock:
            self._state.clock += 1
            when = self._state.clock if create_time is None else create_time
            version = _Version(version_id, when)
            if isinstance(value, bytes):
                version.binary = base64.b64encode(value).decode("ascii")
            else:
                version.string = value
            versions = [v for v in self._state.secrets.get(name, []) if v.version_id != version_id]
            self._state.secrets[name] = [*versions, version]

    def delete_secret(self, name: str) -> None:
        with self._lock:
            self._state.secrets.pop(name, None)

    def deny(self, name: str) -> None:
        """CAM refuses this secret to every caller."""
        with self._lock:
            self._state.denied.add(name)

    def fail_next(self, code: str, message: str = "injected failure") -> None:
        """The next request answers ``Response.Error`` with this code."""
        with self._lock:
            self._state.fail_next.append((code, message))

    def set_delay(self, seconds: float) -> None:
        """Answer every request this late (read timeouts)."""
        self._state.delay = seconds

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._state.requests)

    def count(self, action: str | None = None) -> int:
        return sum(1 for r in self.requests if action is None or r.action == action)

    def clear_requests(self) -> None:
        with self._lock:
            self._state.requests.clear()

    # -- the service -----------------------------------------------------------------------------
    def answer(self, headers: dict[str, str], raw_body: bytes) -> dict[str, Any]:
        """The ``Response`` object for one request."""
        action = headers.get("x-tc-action", "")
        body = json.loads(raw_body or b"{}")
        with self._lock:
            self._state.requests.append(Recorded(action, headers, body))
            injected = self._state.fail_next.pop(0) if self._state.fail_next else None
        self._authenticate(headers, raw_body)
        if injected:
            raise ServiceError(*injected)
        if headers.get("x-tc-version") != API_VERSION:
            raise ServiceError("InvalidParameterValue", f"unsupported version {headers.get('x-tc-version')}")
        if action == "GetSecretValue":
            return self._get_secret_value(body)
        if action == "ListSecretVersionIds":
            return self._list_versions(body)
        raise ServiceError("InvalidAction", f"action {action!r} is not supported by this fake")

    def _versions(self, name: object) -> list[_Version]:
        if not isinstance(name, str) or not name:
            raise ServiceError("MissingParameter", "The request is missing a required parameter `SecretName`.")
        if name in self._state.denied:
            raise ServiceError("UnauthorizedOperation", "CAM signature/authentication error.")
        with self._lock:
            versions = self._state.secrets.get(name)
        if versions is None:
            raise ServiceError("ResourceNotFound", f"The secret `{name}` does not exist.")
        return versions

    def _get_secret_value(self, body: dict[str, Any]) -> dict[str, Any]:
        versions = self._versions(body.get("SecretName"))
        wanted = body.get("VersionId")
        if not wanted:
            raise ServiceError("MissingParameter", "The request is missing a required parameter `VersionId`.")
        for version in versions:
            if version.version_id == wanted:
                return {"SecretName": body["SecretName"], "VersionId": wanted,
                        "SecretString": version.string, "SecretBinary": version.binary}
        raise ServiceError("ResourceNotFound", f"The version `{wanted}` does not exist.")

    def _list_versions(self, body: dict[str, Any]) -> dict[str, Any]:
        versions = self._versions(body.get("SecretName"))
        return {"SecretName": body["SecretName"],
                "Versions": [{"VersionId": v.version_id, "CreateTime": v.create_time} for v in versions]}

    def _authenticate(self, headers: dict[str, str], raw_body: bytes) -> None:
        match = _AUTH.fullmatch(headers.get("authorization", ""))
        if match is None:
            raise ServiceError("AuthFailure.SignatureFailure", "The Authorization header is not TC3-HMAC-SHA256.")
        timestamp = int(headers.get("x-tc-timestamp", "0"))
        if abs(time.time() - timestamp) > 300:
            raise ServiceError("AuthFailure.SignatureExpire", "The request signature has expired.")
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if match["service"] != SERVICE or match["date"] != date or match["signed"] != "content-type;host":
            raise ServiceError("AuthFailure.SignatureFailure", "The credential scope is wrong.")
        if self.require_token is not None and headers.get("x-tc-token") != self.require_token:
            raise ServiceError("AuthFailure.TokenFailure", "The session token is missing or invalid.")
        if self.credentials:
            key = self.credentials.get(match["id"])
            if key is None:
                raise ServiceError("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
            if not hmac.compare_digest(tc3_signature(key, headers, raw_body, date), match["signature"]):
                raise ServiceError("AuthFailure.SignatureFailure", "The provided signature does not match.")


def tc3_signature(secret_key: str, headers: dict[str, str], payload: bytes, date: str) -> str:
    """TC3-HMAC-SHA256 over a POST / with signed headers content-type;host (Tencent's documented scheme)."""
    canonical = "\n".join([
        "POST", "/", "",
        f"content-type:{headers.get('content-type', '')}\nhost:{headers.get('host', '')}\n",
        "content-type;host",
        hashlib.sha256(payload).hexdigest(),
    ])
    scope = f"{date}/{SERVICE}/tc3_request"
    to_sign = "\n".join(["TC3-HMAC-SHA256", headers.get("x-tc-timestamp", ""), scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])

    def sign(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    signing_key = sign(sign(sign(f"TC3{secret_key}".encode(), date), SERVICE), "tc3_request")
    return hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()


def _handler_for(fake: FakeTencentSSM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            request_id = str(uuid.uuid4())
            try:
                response = fake.answer(headers, raw)
            except ServiceError as exc:
                response = {"Error": {"Code": exc.code, "Message": exc.message}}
            if fake._state.delay:
                time.sleep(fake._state.delay)
            self._reply({"Response": {**response, "RequestId": request_id}})

        def _reply(self, document: dict[str, Any]) -> None:
            payload = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")  # no pooled connection outlives stop()
            self.close_connection = True
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (keep test output quiet)
            pass

    return Handler

