"""The emulated server without HTTP: one lock, the request pipeline, the request log.

A request goes: injected fault? → method → URL checks → rate limit → UserSig → body → the API.
Faults come first because they stand for the network or a failing server, not for a verdict on
the request; a faulted request touches neither the rate limit nor the tasks.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from timpush.emulator import auth
from timpush.emulator import envelope as env
from timpush.emulator.clock import Clock
from timpush.emulator.faults import Fault, FaultQueue
from timpush.emulator.ratelimit import SlidingWindow
from timpush.emulator.settings import EmulatorSettings
from timpush.emulator.state import TaskStore
from timpush.emulator.validation import format_time, require_sdkappid

API_PREFIX = "/v4/timpush/"
JSON_TYPE = "application/json; charset=utf-8"
_HTML_TYPE = "text/html; charset=utf-8"
_BAD_GATEWAY = b"<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
_NOT_ENVELOPE = b"<html><body>An unexpected page where the JSON envelope should be</body></html>"
_FAULT_CODES = {"internal_error": env.INTERNAL_ERROR, "rate_limit": env.RATE_LIMITED}
_FAULT_INFO = {"internal_error": "internal error", "rate_limit": env.RATE_LIMIT_INFO}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """What to send; ``drop`` closes the connection without any answer."""

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    drop: bool = False


@dataclass(frozen=True)
class ClockState:
    now: float  # emulated unix time
    offset: float  # seconds added to real time so far

    def as_dict(self) -> dict[str, object]:
        return {"now": self.now, "utc": format_time(self.now), "offset": self.offset}


def json_reply(document: object, status: int = 200) -> Reply:
    return Reply(status, json.dumps(document, ensure_ascii=False).encode("utf-8"))


def api_of(path: str) -> str | None:
    """The API a path names, None for any other path."""
    name = path.removeprefix(API_PREFIX)
    return name if path.startswith(API_PREFIX) and name in env.APIS else None


class EmulatorCore:
    """All state behind one lock; the HTTP layer and the Python API both go through here."""

    def __init__(self, settings: EmulatorSettings, faults: Iterable[Fault] = (), clock: Clock | None = None) -> None:
        self.settings = settings
        self.stopping = threading.Event()  # wakes ``slow`` faults when the server stops
        self._lock = threading.Lock()
        self._clock = clock or Clock()
        self._reset_state()
        self._faults.add(faults)

    def _reset_state(self) -> None:
        self._store = TaskStore(self.settings)
        self._faults = FaultQueue(self.settings.seed)
        self._limiter = SlidingWindow(self.settings.rate_limit)
        self._log: deque[dict[str, object]] = deque(maxlen=self.settings.log_limit)
        self._clock.reset()

    def serve(self, request: Request) -> Reply:
        """Answer one request to a non-admin path, and log it."""
        api = api_of(request.path)
        with self._lock:
            fault = self._faults.take(api) if api else None
        if fault is not None and fault.kind == "slow":
            self.stopping.wait(fault.delay)  # outside the lock: other requests go on meanwhile
        with self._lock:
            if fault is not None and fault.kind != "slow":
                reply, code = _fault_reply(fault, api)
            else:
                reply, code = self._answer(request, api)
            self._log.append(self._entry(request, api, reply, code, fault))
        return reply

    def _answer(self, request: Request, api: str | None) -> tuple[Reply, int]:
        try:
            fields = self._call(request, api)
        except env.ApiError as exc:
            return json_reply(env.failure(api, exc.code, exc.info)), exc.code
        return json_reply(env.success(fields)), 0

    def _call(self, request: Request, api: str | None) -> dict[str, object]:
        if api is None:
            raise env.ApiError(env.UNKNOWN_RESOURCE, "requested resource does not exist")
        if request.method != "POST":
            raise env.ApiError(env.INVALID_URL, "only POST is supported")
        sdkappid = auth.app_of(request.query, self.settings)
        if not self._limiter.admit((sdkappid, api), self._clock.monotonic()):
            raise env.ApiError(env.RATE_LIMITED, env.RATE_LIMIT_INFO)
        key = self.settings.key_for(sdkappid) or ""
        now = self._clock.now()
        auth.identity_of(request.query, sdkappid, key, self.settings.admins, int(now))
        body = _decode_body(request.body)
        require_sdkappid(body, sdkappid)
        return self._store.call(api, sdkappid, body, now)

    def _entry(
        self, request: Request, api: str | None, reply: Reply, code: int | None, fault: Fault | None
    ) -> dict[str, object]:
        # The UserSig is a credential: it never enters the log.
        return {
            "t": self._clock.now(),
            "method": request.method,
            "path": request.path,
            "api": api,
            "query": {name: value for name, value in request.query.items() if name != "usersig"},
            "body": _json_or_none(request.body),
            "http_status": None if reply.drop else reply.status,
            "code": code,
            "fault": fault.kind if fault else None,
        }

    # The admin side: each a short locked read or write, returning copies the caller may keep.

    def requests(self) -> list[dict[str, object]]:
        with self._lock:
            return copy.deepcopy(list(self._log))

    def clear_requests(self) -> int:
        with self._lock:
            cleared = len(self._log)
            self._log.clear()
            return cleared

    def add_faults(self, faults: Iterable[Fault]) -> list[dict[str, object]]:
        with self._lock:
            self._faults.add(faults)
            return self._faults.pending()

    def faults(self) -> list[dict[str, object]]:
        with self._lock:
            return self._faults.pending()

    def clear_faults(self) -> int:
        with self._lock:
            return self._faults.clear()

    def advance(self, seconds: float) -> ClockState:
        with self._lock:
            self._clock.advance(seconds)
            return ClockState(self._clock.now(), self._clock.offset)

    def clock(self) -> ClockState:
        with self._lock:
            return ClockState(self._clock.now(), self._clock.offset)

    def tasks(self) -> list[dict[str, object]]:
        with self._lock:
            return copy.deepcopy(self._store.snapshot(self._clock.now()))

    def reset(self) -> None:
        """Back to the state at start: no tasks, faults, log or clock offset; RNGs re-seeded."""
        with self._lock:
            self._reset_state()


def _fault_reply(fault: Fault, api: str | None) -> tuple[Reply, int | None]:
    if fault.kind == "drop":
        return Reply(0, drop=True), None
    if fault.kind == "http_502":
        return Reply(502, _BAD_GATEWAY, _HTML_TYPE), None
    if fault.kind == "not_envelope":
        return Reply(200, _NOT_ENVELOPE, _HTML_TYPE), None
    code = fault.code if fault.code is not None else _FAULT_CODES[fault.kind]
    info = _FAULT_INFO.get(fault.kind, f"injected error {code}")
    return json_reply(env.failure(api, code, info)), code


def _decode_body(raw: bytes) -> dict[str, object]:
    if not raw.strip():
        raise env.ApiError(env.BAD_JSON, "request body is empty")
    try:
        body = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise env.ApiError(env.BAD_JSON, "request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise env.ApiError(env.BAD_JSON, "request body is not a JSON object")
    return body


def _json_or_none(raw: bytes) -> object:
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        return None
