"""The fleet's rate budget with a virtual clock and the in-memory slots, which keep DynamoDB's conditions."""

from __future__ import annotations

import logging

import pytest

from handler.im.ratelimit import NoSlot
from handler.order.store import StoreUnavailable
from handler.state import CALLER_AHEAD, WORKER_AHEAD
from handler.state.memory import MemorySlots
from handler.state.rate import COOL_DOWN, FleetLimiter


class Time:
    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def wall(self) -> float:
        return self.now

    def mono(self) -> float:
        return self.now - 1_779_000_000.0

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class Item(MemorySlots):
    """One app's slot (handler/state/memory.MemorySlots, DynamoDB's conditions) that can fail and counts writes."""

    name = "memory-item"
    PK = "rate#1#modify"

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.writes = 0
        self.clock: Time | None = None
        self.write_times: list[float] = []

    @property
    def next_free(self) -> int | None:
        return self._next.get(self.PK)

    @next_free.setter
    def next_free(self, value: int) -> None:
        self._next[self.PK] = value

    def reserve(self, pk: str, now_ms: int, step_ms: int, reach_ms: int, known_ms: int | None) -> tuple[int, bool]:
        self._call()
        return super().reserve(pk, now_ms, step_ms, reach_ms, known_ms)

    def hold(self, pk: str, until_ms: int) -> None:
        self._call()
        super().hold(pk, until_ms)

    def _call(self) -> None:
        if self.down:
            raise StoreUnavailable(self.name, "EndpointConnectionError")
        self.writes += 1
        if self.clock is not None:
            self.write_times.append(self.clock.now)


def fleet(item: Item, vt: Time, n: int, rate: float = 5, fallback: float = 1) -> list[FleetLimiter]:
    return [FleetLimiter(item, "rate#1#modify", rate, fallback, clock=vt.wall, monotonic=vt.mono, sleep=vt.sleep)
            for _ in range(n)]


def max_in_window(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for u in times if t <= u < t + 1.0) for t in times)


@pytest.mark.parametrize("processes", [1, 3, 8])
def test_every_process_together_stays_within_the_limit_and_uses_it(processes: int) -> None:
    vt, item = Time(), Item()
    limiters = fleet(item, vt, processes)
    sent = [limiters[i % processes].acquire() for i in range(100)]  # in turn, as the processes interleave
    assert max_in_window(sent) <= 5
    # the whole budget, less the 5 % margin and one more interval for each process's first (double) slot
    assert sent[-1] - sent[0] <= (99 + processes) * 1.05 / 5 + 1e-6
    writes_per_request = item.writes / 100
    assert writes_per_request <= 1.1  # the store hands out the next slot: no race is lost (a rare early wake-up)


@pytest.mark.parametrize(("ahead", "writes_after"), [(WORKER_AHEAD, [0.0, 0.5]), (CALLER_AHEAD, [0.0])])
def test_a_worker_reserves_at_most_two_seconds_ahead_a_waiting_caller_further(ahead: float,
                                                                           writes_after: list[float]) -> None:
    # Given the budget spoken for 2.5 s ahead (a burst of HTTP calls)
    vt, item = Time(), Item()
    item.next_free = round(vt.now * 1000) + 2500
    item.clock = vt
    [limiter] = fleet(item, vt, 1)
    started = vt.now
    limiter.acquire(ahead=ahead)
    # Then both send at the same slot, but a worker first waits, without writing, until it is 2 s away;
    # a caller reserves at once (its place is kept however many workers come meanwhile)
    assert vt.now - started == pytest.approx(2.5, abs=0.01)
    assert [round(t - started, 2) for t in item.write_times] == writes_after


def test_no_slot_before_the_deadline_is_refused_at_once() -> None:
    vt, item = Time(), Item()
    item.next_free = round(vt.now * 1000) + 10_000
    [limiter] = fleet(item, vt, 1)
    started = vt.now
    with pytest.raises(NoSlot, match="past the deadline"):
        limiter.acquire(deadline=vt.mono() + 3.0, ahead=CALLER_AHEAD)
    assert vt.now - started < 0.5  # it did not wait for a slot it could not use


def test_a_pause_is_written_for_the_whole_fleet() -> None:
    vt, item = Time(), Item()
    first, second = fleet(item, vt, 2)
    first.back_off(1.0)
    started = vt.now
    second.acquire()
    assert vt.now - started == pytest.approx(1.0, abs=0.01)


def test_an_unreachable_store_falls_back_to_this_process_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    vt, item = Time(), Item()
    [limiter] = fleet(item, vt, 1, fallback=2)
    item.down = True
    caplog.set_level(logging.WARNING)
    sent = [limiter.acquire() for _ in range(10)]
    assert max_in_window(sent) <= 2
    warnings = [r for r in caplog.records if "rate store unreachable" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].store == "memory-item"  # type: ignore[attr-defined]
    # after the cool-down it goes back to the store
    item.down = False
    vt.now += COOL_DOWN
    limiter.acquire()
    assert item.writes >= 1


def test_late_wake_ups_within_the_margin_neither_overflow_a_window_nor_slow_the_fleet() -> None:
    import random

    vt, item = Time(), Item()
    dice = random.Random(3)

    def late_sleep(seconds: float) -> None:  # every wake-up overshoots by up to 45 ms, as on a busy machine
        vt.sleep(seconds + dice.uniform(0.0, 0.045))

    limiters = [FleetLimiter(item, "rate#1#modify", 5, 1, clock=vt.wall, monotonic=vt.mono, sleep=late_sleep)
                for _ in range(3)]
    sent = []
    for i in range(200):
        limiters[i % 3].acquire()
        sent.append(vt.now)  # when the request really leaves: after the late wake-up
    assert max_in_window(sent) <= 5  # six sends span five intervals (1050 ms): 45 ms late still fits
    assert sent[-1] - sent[0] <= (199 + 3) * 0.21 + 0.05  # the schedule is kept; each first slot is double
