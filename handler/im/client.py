"""The one HTTP path to the IM REST API: a pooled Session, fixed timeouts, one response funnel.

Every response or exception becomes an ImResult carrying an error code (the envelope's ErrorCode,
or the project's negative codes for transport failures), so callers never handle exceptions.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any, NamedTuple
from urllib.parse import quote

import requests
from urllib3.util import Timeout

from handler.im.codes import CONNECTION_FAILED, HTTP_STATUS, NOT_ENVELOPE, TIMED_OUT, Origin

CONNECT_TIMEOUT = 3.05  # just over a TCP retransmit window
READ_TIMEOUT = 10.0  # the API answers in well under a second; anything slower is a failure to retry
ATTEMPT_TIME = CONNECT_TIMEOUT + READ_TIMEOUT  # the longest one attempt may take when time is no object

# One keep-alive pool per process, reused by warm invocations.
SESSION = requests.Session()
SESSION.headers.update({"Content-Type": "application/json", "User-Agent": "timpush-modifier/0.1"})
# requests re-reads the proxy and CA variables from the whole environment on every request (a fifth of a
# millisecond here). They cannot change within a process, so they are read once per base URL instead.
SESSION.trust_env = False
_ENVIRONMENT: dict[str, dict[str, Any]] = {}


def _from_environment(base: str) -> dict[str, Any]:
    """Proxies and TLS verification for ``base`` as requests would take them from the environment."""
    if base not in _ENVIRONMENT:
        reader = requests.Session()  # trust_env on: the standard lookup, done once
        found = reader.merge_environment_settings(base, {}, None, None, None)
        _ENVIRONMENT[base] = {"proxies": found["proxies"], "verify": found["verify"]}
    return _ENVIRONMENT[base]

_SIG_SAFE = "*-_"  # the UserSig alphabet's non-alphanumerics: URL-safe, never escaped
_SIGNED_QUERY = r"(?i)(usersig=)[^&\s'\"]+"  # as text: compiled on first use (an error or a debug line)


def scrub(text: str, *secret_values: str) -> str:
    """Remove signed-URL parameters and any given secret from text (requests puts the URL in errors)."""
    text = re.sub(_SIGNED_QUERY, r"\1<redacted>", text)
    for value in secret_values:
        if value:
            text = text.replace(value, "<redacted>")
    return text


class _ScrubSignedUrls(logging.Filter):
    """urllib3 logs each request line, signed query included, at DEBUG: rewrite it before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "usersig=" in message.lower():
            record.msg, record.args = scrub(message), None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_ScrubSignedUrls())


class ImResult(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    """What one call produced: ``code`` 0 on success."""

    code: int
    info: str
    origin: Origin
    http_status: int | None = None
    body: dict[str, Any] | None = None
    latency: float = 0.0

    @property
    def ok(self) -> bool:
        return self.code == 0


class Credentials(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    """The query parameters that sign a request."""

    sdkappid: int
    identifier: str
    usersig: str


def timeouts(left: float, read: float = READ_TIMEOUT) -> Timeout:
    """An attempt's timeouts when ``left`` seconds remain: connect and read each capped by it, and the two
    together too (urllib3 gives the read what the connect left of ``total``), so the attempt ends within it.
    Any HTTP call that must end by a deadline takes these (the CMQ data-flow client too)."""
    left = max(left, 0.001)  # urllib3 takes 0 as "no wait at all", which is also what is meant
    return Timeout(connect=min(CONNECT_TIMEOUT, left), read=min(read, left), total=left)


def call(base: str, api: str, body: dict[str, Any], creds: Credentials, left: float = ATTEMPT_TIME,
         read: float = READ_TIMEOUT) -> ImResult:
    """POST ``body`` to ``{base}/v4/timpush/{api}`` within ``left`` seconds (connect and read together, each
    read at most ``read``); never raises for HTTP or network failures."""
    timeout: Any = timeouts(left, read)  # requests takes a urllib3 Timeout as it is (its stubs say a tuple)
    started = time.perf_counter()
    try:
        response = SESSION.post(f"{base}/v4/timpush/{api}?{_query(creds)}", json=body, timeout=timeout,
                                **_from_environment(base))
    except requests.Timeout as exc:
        return _failure(TIMED_OUT, exc, started, creds.usersig)
    except requests.RequestException as exc:
        return _failure(CONNECTION_FAILED, exc, started, creds.usersig)
    return _funnel(response, time.perf_counter() - started)


def _query(creds: Credentials) -> str:
    """The signed query string, built by hand rather than by ``params=``.

    A UserSig is base64 with Tencent's URL-safe substitutions (``* - _``), so it goes into the URL as it
    is. ``params=`` would escape ``*`` as ``%2A``, and urllib3 then re-encodes the whole ~250-character
    query byte by byte in Python on every request (about 0.1 ms, a fifth of a loopback round trip).
    """
    return (f"usersig={quote(creds.usersig, safe=_SIG_SAFE)}&identifier={quote(creds.identifier, safe='')}"
            f"&sdkappid={creds.sdkappid}&random={secrets.randbelow(2**32)}"  # fresh 32-bit unsigned per request
            "&contenttype=json")


def _failure(code: int, exc: Exception, started: float, usersig: str) -> ImResult:
    info = f"{type(exc).__name__}: {scrub(str(exc), usersig)}"
    return ImResult(code, info[:500], Origin.TRANSPORT, latency=time.perf_counter() - started)


def _funnel(response: requests.Response, latency: float) -> ImResult:
    status = response.status_code
    if status != 200:
        return ImResult(HTTP_STATUS, f"HTTP {status}", Origin.TRANSPORT, status, latency=latency)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("ErrorCode"), int):
        return ImResult(NOT_ENVELOPE, "response is not the IM JSON envelope", Origin.TRANSPORT, status,
                        latency=latency)
    code = body["ErrorCode"]
    info = str(body.get("ErrorInfo", ""))
    # ErrorInfo may say "sucess" or anything else on success: only ErrorCode decides (API.md §2.3).
    return ImResult(code, info, Origin.REMOTE, status, body, latency)


# --- reading tasks back (timpush tasks; the modifier never reads) --------------------------------------

LIST_ORDER = "createat"  # API.md §1.7 spells it two ways; the lowercase form, which the server accepts


def get_sched_task(base: str, creds: Credentials, task_id: int, left: float = ATTEMPT_TIME,
                   read: float = READ_TIMEOUT) -> ImResult:
    """One task's details (API.md §1.6): ``body["TaskInfo"]`` on success."""
    return call(base, "get_sched_task", {"Sdkappid": creds.sdkappid, "TaskID": task_id}, creds, left, read)


def list_sched_task(base: str, creds: Credentials, offset: int, want: int, *, asc: bool = False,
                    left: float = ATTEMPT_TIME, read: float = READ_TIMEOUT) -> ImResult:
    """One page of tasks by creation time (API.md §1.7): ``body["Total"]`` and ``body["Tasks"]``."""
    body = {"Sdkappid": creds.sdkappid, "Offset": offset, "Want": want, "OrderBy": LIST_ORDER, "Asc": asc}
    return call(base, "list_sched_task", body, creds, left, read)
