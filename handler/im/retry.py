"""The one retry loop for calls to the IM API: pace, sign, call, classify, back off.

The modifier and ``timpush tasks`` both run it (DESIGN "Every attempt ends inside the invocation"). The caller's
deadline already keeps back what finishing needs (``handler.sources.FINISH_RESERVE``); each attempt is given only
the time left before it: its connect and read timeouts, and both together, are capped by it, so no attempt
outlives the invocation. An attempt with less than MIN_ATTEMPT left is not started, and neither is one whose send
slot comes too late: the call ends with the last attempt's answer, or, when there was none, with -2 (timed out)
or 60007 (no send slot), origin ``local``, which the caller retries later or dead-letters by its class.
A retryable answer is tried again after a jittered back-off while another attempt fits; an auth answer gets one
fresh UserSig and a re-fetched secret (a rotated key), then one more attempt.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from handler.im import client, codes
from handler.im.codes import ErrorClass, Origin, classify
from handler.im.ratelimit import NoSlot, Pacer
from handler.observability import debugging, logger
from handler.secrets import SecretUnavailable

if TYPE_CHECKING:
    from handler.apps import App
    from handler.im.usersig import Identity

MIN_ATTEMPT = 0.5  # seconds: the API answers in well under this; an attempt given less is not started
BACKOFF_BASE = 0.25  # seconds; full jitter over base * 2**(attempt-1)
BACKOFF_CAP = 4.0
RATE_LIMIT_PAUSE = 1.0  # after 60007 and kin, let the server's one-second window clear
NO_TIME = "not sent: no time left for an attempt before the deadline"

Send = Callable[[str, client.Credentials, float], client.ImResult]
"""One attempt: base URL, credentials, and the seconds it may take (connect and read together)."""


def backoff(attempts: int) -> float:
    """Seconds to wait before the next attempt: exponential, capped, with full jitter.

    BACKOFF_BASE is read at call time, so tests that shorten it reach every caller.
    """
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempts - 1)))  # noqa: S311 (jitter)


@dataclass
class Call:
    """One call's state across its attempts; ``attempts`` and ``latency`` are what the caller reports."""

    app: App
    identity: Identity
    pacer: Pacer
    ahead: float = math.inf  # how far ahead a send slot may be reserved in the fleet's budget
    log: Mapping[str, Any] = field(default_factory=dict)  # keys for the debug lines (e.g. task_id)
    attempts: int = 0
    refreshed: bool = False
    latency: float = 0.0
    last: client.ImResult | None = None  # the last answer (or transport failure) of a started attempt


class Retry:
    """The loop, with the attempt budget and the clock it runs on (one per process: it keeps no call's state)."""

    def __init__(self, max_attempts: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._max_attempts = max_attempts
        self._clock = clock
        self._sleep = sleep

    def run(self, call: Call, send: Send, deadline: float) -> client.ImResult:
        """Attempt until an answer is final, the attempts are spent, or no further attempt fits before
        ``deadline`` (on the ``clock`` scale); the answer that ends the call."""
        while True:
            result = self._attempt(call, send, deadline)
            if result.origin is Origin.LOCAL:  # not sent: the last real answer, if any, says more
                return call.last or result
            call.last = result
            if result.ok or not self._again(call, result, deadline):
                return result

    def _attempt(self, call: Call, send: Send, deadline: float) -> client.ImResult:
        asked = self._clock()
        if deadline - asked < MIN_ATTEMPT:
            return client.ImResult(codes.TIMED_OUT, NO_TIME, Origin.LOCAL)
        try:
            slot = call.pacer.acquire(deadline - MIN_ATTEMPT, call.ahead)
        except NoSlot as exc:  # the API's own code for "too many requests": retried later like the server's
            return client.ImResult(codes.RATE_LIMITED, f"not sent: {exc}", Origin.LOCAL)
        left = deadline - self._clock()
        if left < MIN_ATTEMPT:  # the slot came later than reserved (a long sleep): still no time
            return client.ImResult(codes.TIMED_OUT, NO_TIME, Origin.LOCAL)
        call.attempts += 1
        creds = client.Credentials(call.identity.sdkappid, call.identity.admin, call.app.sigs.get(call.identity))
        if debugging():  # the fields of a debug line are built only when it is written (issue 29)
            logger.debug("sending", extra={**call.log, "sdkappid": call.app.sdkappid, "attempt": call.attempts,
                                           "slot": slot,  # the send slot of the budget (the fleet's: epoch seconds)
                                           "paced_ms": round((self._clock() - asked) * 1000, 1),
                                           "time_left_s": round(left, 3),
                                           "usersig_expires_at": call.app.sigs.expires_at})
        result = send(call.app.base, creds, left)
        call.latency += result.latency
        if debugging():
            logger.debug("answered", extra={**call.log, "attempt": call.attempts, "error_code": result.code,
                                            "error_info": result.info, "latency_ms": round(result.latency * 1000, 1)})
        return result

    def _again(self, call: Call, result: client.ImResult, deadline: float) -> bool:
        """Whether to attempt again, doing first what must happen before (refresh, back-off)."""
        error_class = classify(result.code, result.http_status)
        if error_class is ErrorClass.AUTH and not call.refreshed:
            return _refresh(call)
        if error_class is not ErrorClass.RETRYABLE or call.attempts >= self._max_attempts:
            return False
        if result.code in codes.RATE_LIMIT_CODES:
            call.pacer.back_off(RATE_LIMIT_PAUSE)  # this app only: the others have their own budget
        delay = backoff(call.attempts)
        if self._clock() + delay + MIN_ATTEMPT > deadline:  # the next attempt would not fit
            return False
        self._sleep(delay)
        return True


def _refresh(call: Call) -> bool:
    """After an auth answer: a fresh UserSig and a re-fetched secret (rotation), then one more try."""
    call.refreshed = True
    call.app.sigs.invalidate()
    try:
        call.identity = call.app.identities.get(force=True)
    except SecretUnavailable:
        return False
    return True
