"""The emulator's clock: real time plus an offset, so tests can move tasks through their states."""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    """Wall and monotonic time, both shifted by the same offset. Not locked: the core's lock guards it."""

    def __init__(self, wall: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic) -> None:
        self._wall = wall
        self._mono = mono
        self._offset = 0.0

    @property
    def offset(self) -> float:
        return self._offset

    def now(self) -> float:
        """Emulated UTC time as a unix timestamp: what SchedAt, CreateAt and UserSig expiry see."""
        return self._wall() + self._offset

    def monotonic(self) -> float:
        """For the rate limiter: immune to wall-clock jumps, yet moved by ``advance`` like ``now``."""
        return self._mono() + self._offset

    def advance(self, seconds: float) -> None:
        if not seconds >= 0:  # also refuses NaN
            raise ValueError("advance needs a number of seconds >= 0")
        self._offset += seconds

    def reset(self) -> None:
        self._offset = 0.0
