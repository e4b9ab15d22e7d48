"""A sliding one-second window per key, like the documented 5 requests/second per API."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Hashable


class SlidingWindow:
    """Admits at most ``limit`` calls per key in any ``window`` seconds; ``limit`` 0 admits all.

    A refused call does not enter the window: a client that keeps retrying while limited is
    let through as soon as the accepted calls age out, as real throttles usually behave.
    """

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self._limit = limit
        self._window = window
        self._seen: defaultdict[Hashable, deque[float]] = defaultdict(deque)

    def admit(self, key: Hashable, now: float) -> bool:
        if self._limit == 0:
            return True
        seen = self._seen[key]
        while seen and seen[0] <= now - self._window:
            seen.popleft()
        if len(seen) >= self._limit:
            return False
        seen.append(now)
        return True

    def reset(self) -> None:
        self._seen.clear()
