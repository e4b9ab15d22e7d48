"""One rate budget for the whole fleet: an app's send slots in the state store (``IM_STATE_STORE``).

The store holds the app's next free slot (ms since the epoch). A sender reserves it with one atomic write that
hands out the next free slot (now, when the budget is idle) and moves it one interval on (``1.05 / IM_RATE_LIMIT``
s: the 5 % absorbs send-to-arrival jitter, larger between processes than within one, since each wakes for its
slot on its own), then sleeps until its slot, so however many processes send, no one-second window holds more
than the limit. The move is the server's own (a Redis script; in DynamoDB an ``ADD``-style update conditioned on
the slot being within reach), so senders racing for the budget each get the next slot at the first write instead
of losing races; a write that does lose (the budget went idle, or out of reach) returns the slot as it is, so the
next try needs no read.

A process's first request is slower to arrive than its slot says (the connection is opened after the slot is
taken: tens of ms on loopback under load, a TLS handshake to Tencent on Lambda), which would squeeze the
window behind it; so a process's first slot is a double one, and the next sender's slot comes an interval later.

Fair share: a queue worker reserves at most WORKER_AHEAD (2) seconds ahead, a waiting caller (HTTP) up to
CALLER_AHEAD (3), so an HTTP call waits behind at most about two seconds of backlog however long the queue is.
A worker that finds the budget spoken for sleeps (no write) until the next slot is within its reach.

When the store cannot be reached the process paces itself at ``IM_RATE_FALLBACK`` and tries the store
again after COOL_DOWN seconds; a warning names the store and the cause, and the metric ``RateStoreUnavailable``
counts it. A configuration fault (a wrong password, a missing table) is also reported as the order reports it
(``handler.order.faults.misconfigured``: one ERROR per process, metric ``StateStoreMisconfigured``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit

from handler.im.ratelimit import NoSlot, RateLimiter
from handler.observability import logger, metrics
from handler.order.faults import misconfigured
from handler.order.store import StoreUnavailable
from handler.state import WORKER_AHEAD

FLEET_MARGIN = 0.05  # of the interval between slots; 4.76 requests/s of 5
COOL_DOWN = 30.0  # seconds on the fallback before the store is tried again
MAX_WRITES = 8  # writes per slot before giving up for this attempt (a rare pile-up)


class Slots(Protocol):
    name: str

    def reserve(self, pk: str, now_ms: int, step_ms: int, reach_ms: int, known_ms: int | None) -> tuple[int, bool]:
        """Take the next free slot if it is at most ``reach_ms`` after ``now_ms`` (``now_ms`` itself when the
        budget is idle) and move it ``step_ms`` on, in one atomic write: ``(slot, True)``. Else ``(next free,
        False)``, nothing taken. ``known_ms`` is the next free slot as this caller last saw it (a hint)."""

    def hold(self, pk: str, until_ms: int) -> None:
        """Nobody sends before ``until_ms`` (the server said 60007): move the next free slot there, never back."""


class FleetLimiter:
    """Paces one app's calls to one API across every process that shares ``slots``."""

    def __init__(self, slots: Slots, pk: str, rate: float, fallback: float,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._slots = slots
        self._pk = pk
        self._interval_ms = max(1, round(1000 * (1 + FLEET_MARGIN) / rate))
        self._fallback = RateLimiter(fallback, clock=monotonic, sleep=sleep)
        self._clock, self._monotonic, self._sleep = clock, monotonic, sleep
        self._known: int | None = None  # the next free slot as last seen
        self._cold = True  # no request sent yet: its first slot is a double one
        self._down_until = -math.inf
        self.writes = 0  # conditional writes made (benchmarks report writes per request)

    def acquire(self, deadline: float = math.inf, ahead: float = WORKER_AHEAD) -> float:
        """Wait for a slot of the fleet's budget; NoSlot when it would come after ``deadline`` (monotonic)."""
        if self._monotonic() < self._down_until:
            return self._fallback.acquire(deadline)
        try:
            return self._reserve(deadline, ahead)
        except StoreUnavailable as exc:
            self._store_down(exc)
            return self._fallback.acquire(deadline)

    def back_off(self, seconds: float) -> None:
        """The server said "too many requests": hold every sender of the fleet for ``seconds``."""
        until = self._now_ms() + round(seconds * 1000)
        self._known = max(self._known or 0, until)
        self._fallback.back_off(seconds)
        if self._monotonic() >= self._down_until:
            try:
                self._slots.hold(self._pk, until)
            except StoreUnavailable as exc:
                self._store_down(exc)

    def _reserve(self, deadline: float, ahead: float) -> float:
        for _ in range(MAX_WRITES):
            now = self._now_ms()
            known = self._known if self._known is not None and self._known > now else None
            if known is not None:
                self._check_deadline(known - now, deadline)
                if known - now > ahead * 1000:
                    self._sleep((known - now) / 1000 - ahead)  # our share is spoken for: wait, without writing
                    continue
            reach = round(min(ahead, deadline - self._monotonic()) * 1000)
            step = self._interval_ms * (2 if self._cold else 1)
            self.writes += 1
            slot, taken = self._slots.reserve(self._pk, now, step, max(0, reach), known)
            self._known = slot + step if taken else slot
            if taken:
                self._cold = False
                self._sleep(max(0.0, (slot - self._now_ms()) / 1000))
                return slot / 1000
        raise NoSlot(f"the fleet's rate budget is contended: no slot after {MAX_WRITES} tries")

    def _check_deadline(self, wait_ms: int, deadline: float) -> None:
        if self._monotonic() + wait_ms / 1000 > deadline:
            raise NoSlot(f"the next send slot is {wait_ms / 1000:.2f}s away, past the deadline")

    def _store_down(self, exc: StoreUnavailable) -> None:
        self._down_until = self._monotonic() + COOL_DOWN
        if not exc.transient:  # named as the order names it (ERROR once, StateStoreMisconfigured); paced meanwhile
            misconfigured(exc)
        logger.warning("rate store unreachable: this process paces itself at IM_RATE_FALLBACK", extra={
            "store": self._slots.name, "reason": str(exc), "retry_in_s": COOL_DOWN})
        metrics.add_metric(name="RateStoreUnavailable", unit=MetricUnit.Count, value=1)

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)
