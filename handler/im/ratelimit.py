"""Process-wide pacing so that no one-second window holds more requests than the API allows.

A sliding log of reserved send times: a caller reserves the earliest slot that keeps the window
within the limit, then sleeps outside the lock until that slot. The window is stretched by a small
margin because the server counts arrivals, and loopback or network jitter can move an arrival
later than its send time.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

WINDOW = 1.0
JITTER_MARGIN = 0.03  # seconds added to the window; absorbs send-to-arrival variance


class NoSlot(Exception):
    """No send slot is free before the caller's deadline."""


class Pacer(Protocol):
    """What the modifier needs of pacing: this process's limiter, or the fleet's (handler/state/rate.py)."""

    def acquire(self, deadline: float = math.inf, ahead: float = math.inf) -> float: ...

    def back_off(self, seconds: float) -> None: ...


class RateLimiter:
    """Paces ``rate`` requests per second across all threads; ``rate == 0`` turns pacing off."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # A fractional rate becomes a burst of floor(rate) spread over a longer window.
        self._burst = max(1, math.floor(rate)) if rate > 0 else 0
        self._window = (self._burst / rate if rate > 0 else 0.0) * WINDOW + JITTER_MARGIN
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: deque[float] = deque(maxlen=self._burst or 1)
        self._blocked_until = 0.0

    def acquire(self, deadline: float = math.inf, ahead: float = math.inf) -> float:
        """Wait for a send slot and return its time on the clock. Raise NoSlot if it comes after ``deadline``.

        ``ahead`` (how far ahead a caller may reserve) matters for the fleet's shared budget only: within
        one process callers are served in turn.
        """
        if not self._burst:
            return self._clock()
        with self._lock:
            now = self._clock()
            slot = self._next_slot(now)
            if slot > deadline:
                raise NoSlot(f"next send slot is {slot - now:.2f}s away, past the deadline")
            self._sent.append(slot)
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return slot

    def back_off(self, seconds: float) -> None:
        """The server said "too many requests": hold every sender for ``seconds``."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def _next_slot(self, now: float) -> float:
        slot = max(now, self._blocked_until)
        if len(self._sent) == self._burst:
            slot = max(slot, self._sent[0] + self._window)
        return slot
