"""Store faults around the order (DESIGN "The state store, as people rent it"), split by what cures them.

A **transient** fault (refused or dropped connection, timeout, read-only replica during a failover, loading,
busy, throttled, 5xx) is tried again within the invocation, with jittered back-off, while another try can
end before the deadline: a Redis restarted in a third of a second costs a pause, not a failed modification.
A **configuration** fault (``StoreMisconfigured``: authentication, permission, no such database or table,
server too old, eviction policy) waits for a person: it is not tried again, its ERROR is logged once per
process (per store and cause, so a warm fleet does not flood the log) and each one counts in the metric
``StateStoreMisconfigured`` (alarm on it). Either way the caller ends with code -6 and nothing is sent.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from aws_lambda_powertools.metrics import MetricUnit

from handler.observability import logger, metrics
from handler.order.store import StoreUnavailable

T = TypeVar("T")

STORE_TRIES = 6  # tries of one store call, the first included: pauses of 1.55 to 3.1 s in all
STORE_PAUSE = 0.1  # seconds before the second try; doubles each time, up to STORE_PAUSE_CAP
STORE_PAUSE_CAP = 1.6
STORE_CALL = 1.5  # seconds one try may take (connect and read timeouts): a try is made only if it can end in time
MISCONFIGURED_METRIC = "StateStoreMisconfigured"

_REPORTED: set[tuple[str, str]] = set()  # (store, cause) already logged as an ERROR by this process
_REPORTED_LOCK = threading.Lock()


def steady(call: Callable[[], T], deadline: float, monotonic: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, tried again after a transient store fault while a try can end before ``deadline``
    (``monotonic``'s scale); a configuration fault is reported (``misconfigured``) and raised at once."""
    tries = 1
    while True:
        try:
            return call()
        except StoreUnavailable as exc:
            if not exc.transient:
                misconfigured(exc)
                raise
            pause = store_pause(tries)
            if tries >= STORE_TRIES or monotonic() + pause + STORE_CALL > deadline:
                raise
            logger.info("state store fault: trying again", extra={
                "store": exc.store, "cause": exc.cause, "try": tries, "pause_s": round(pause, 3)})
            sleep(pause)
            tries += 1


def store_pause(tries: int) -> float:
    """Seconds before try ``tries + 1``: half of it fixed, so the tries span a restart or a short failover
    whatever the dice say; half random, so a fleet's retries do not arrive at the server together."""
    step = min(STORE_PAUSE_CAP, STORE_PAUSE * 2.0 ** (tries - 1))
    return step / 2 + random.uniform(0, step / 2)  # noqa: S311 (jitter, not security)


def misconfigured(exc: StoreUnavailable) -> None:
    """Count a configuration fault; log it as an ERROR the first time this process meets it."""
    metrics.add_metric(name=MISCONFIGURED_METRIC, unit=MetricUnit.Count, value=1)
    with _REPORTED_LOCK:
        first = (exc.store, exc.cause) not in _REPORTED
        _REPORTED.add((exc.store, exc.cause))
    if first:
        logger.error("state store misconfigured: nothing is sent until it is fixed (timpush check names the fix)",
                     extra={"store": exc.store, "cause": exc.cause})


def forget_reported() -> None:
    """Log every configuration fault again (tests)."""
    with _REPORTED_LOCK:
        _REPORTED.clear()
