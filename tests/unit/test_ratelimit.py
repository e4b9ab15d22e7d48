"""Pacing with a virtual clock: no one-second window ever holds more than the limit."""

from __future__ import annotations

import threading

import pytest

from handler.im.ratelimit import JITTER_MARGIN, NoSlot, RateLimiter


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now = max(self.now, self.now + seconds)


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


@pytest.mark.parametrize("rate", [1, 2, 5, 10])
def test_no_window_exceeds_the_rate(rate: int) -> None:
    vt = VirtualTime()
    limiter = RateLimiter(rate, clock=vt.clock, sleep=vt.sleep)
    sent = []
    for _ in range(50):
        limiter.acquire()
        sent.append(vt.now)
    assert _max_in_window(sent) == rate
    # And it is not slower than the ideal by more than the jitter margin per window
    assert sent[-1] <= (50 // rate - 1) * (1 + JITTER_MARGIN) + 1e-9


def test_fractional_rate_spreads_the_burst() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(1.5, clock=vt.clock, sleep=vt.sleep)
    sent = []
    for _ in range(10):
        limiter.acquire()
        sent.append(vt.now)
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert min(gaps) >= 1 / 1.5


def test_zero_rate_means_no_pacing() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(0, clock=vt.clock, sleep=vt.sleep)
    for _ in range(100):
        limiter.acquire()
    assert vt.now == 0.0


def test_back_off_holds_every_sender() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(5, clock=vt.clock, sleep=vt.sleep)
    limiter.acquire()
    limiter.back_off(1.0)
    assert limiter.acquire() == pytest.approx(1.0)
    assert vt.now == pytest.approx(1.0)


def test_no_slot_before_deadline() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(1, clock=vt.clock, sleep=vt.sleep)
    limiter.acquire()
    with pytest.raises(NoSlot):
        limiter.acquire(deadline=0.5)


def test_threads_share_one_budget() -> None:
    limiter = RateLimiter(20)  # real clock: 60 sends at 20/s take about two seconds
    sent: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            slot = limiter.acquire()
            with lock:
                sent.append(slot)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _max_in_window(sent) <= 20
