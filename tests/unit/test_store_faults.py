"""Store faults around the order, split (DESIGN "The state store, as people rent it"): a transient fault is tried
again within the invocation while a try can end before the deadline; a configuration fault is not, logs one ERROR
per process (per store and cause) and counts ``StateStoreMisconfigured``; both end as -6 with nothing sent.
A clock the test controls: no test waits."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import datetime

import pytest

from handler.compat import UTC
from handler.order import faults
from handler.order.faults import STORE_CALL, STORE_TRIES, steady, store_pause
from handler.order.key import Issue, Stamp, TaskKey
from handler.order.store import StoreMisconfigured, StoreUnavailable, TaskState
from handler.order.task import TaskOrder
from handler.state.memory import MemorySlots, MemoryStore
from handler.state.rate import FleetLimiter

NAME = "redis://10.0.0.7:6379/0"


class Time:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def mono(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Flaky:
    """A call that raises ``fault`` ``times`` times, then answers; ``calls`` counts what the server saw."""

    def __init__(self, fault: StoreUnavailable, times: int) -> None:
        self.fault, self.times, self.calls = fault, times, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.fault
        return "ok"


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    faults.forget_reported()
    yield
    faults.forget_reported()


def test_a_transient_fault_is_tried_again_until_the_store_answers() -> None:
    t, call = Time(), Flaky(StoreUnavailable(NAME, "connection refused"), 3)
    assert steady(call, t.now + 30, t.mono, t.sleep) == "ok"
    assert call.calls == 4 and len(t.slept) == 3


def test_the_pauses_span_a_restart_whatever_the_dice_say() -> None:
    # half of each pause is fixed: the tries of one call cover at least 1.55 s, at most 3.1 s
    assert sum(store_pause(n) for n in range(1, STORE_TRIES)) >= 1.55
    for tries in range(1, STORE_TRIES):
        step = min(faults.STORE_PAUSE_CAP, faults.STORE_PAUSE * 2 ** (tries - 1))
        assert step / 2 <= store_pause(tries) <= step


def test_tries_are_bounded_by_their_number() -> None:
    t, call = Time(), Flaky(StoreUnavailable(NAME, "timed out"), 99)
    with pytest.raises(StoreUnavailable, match="timed out"):
        steady(call, t.now + 3600, t.mono, t.sleep)
    assert call.calls == STORE_TRIES


def test_no_try_is_started_that_could_not_end_before_the_deadline() -> None:
    t, call = Time(), Flaky(StoreUnavailable(NAME, "connection refused"), 99)
    deadline = t.now + STORE_CALL + 0.3
    with pytest.raises(StoreUnavailable):
        steady(call, deadline, t.mono, t.sleep)
    assert 1 <= call.calls < STORE_TRIES
    assert t.now + STORE_CALL <= deadline  # the last pause left room for its try


def test_a_configuration_fault_is_not_tried_again_and_is_logged_once(caplog: pytest.LogCaptureFixture,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[str] = []
    monkeypatch.setattr(faults.metrics, "add_metric", lambda name, **_: counted.append(name))
    caplog.set_level(logging.INFO)
    t = Time()
    for _ in range(3):
        call = Flaky(StoreMisconfigured(NAME, "authentication failed (user or password)"), 99)
        with pytest.raises(StoreMisconfigured):
            steady(call, t.now + 30, t.mono, t.sleep)
        assert call.calls == 1
    other = Flaky(StoreMisconfigured("dynamodb:orders", "no such table"), 99)
    with pytest.raises(StoreMisconfigured):
        steady(other, t.now + 30, t.mono, t.sleep)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2  # one per store and cause
    assert [getattr(r, "cause", None) for r in errors] == ["authentication failed (user or password)", "no such table"]
    assert counted == [faults.MISCONFIGURED_METRIC] * 4  # each one counts
    assert t.slept == []


class Blinking(MemoryStore):
    """The in-memory home that refuses its first ``down`` calls as a restarting Redis does."""

    name = NAME

    def __init__(self, down: int, fault: StoreUnavailable | None = None) -> None:
        super().__init__()
        self.down = down
        self.fault = fault or StoreUnavailable(NAME, "connection refused")
        self.calls = 0

    def _blink(self) -> None:
        self.calls += 1
        if self.calls <= self.down:
            raise self.fault

    def lease(self, task: TaskKey, owner: str, until_ms: int, now_ms: int) -> TaskState:
        self._blink()
        return super().lease(task, owner, until_ms, now_ms)

    def record(self, task: TaskKey, owner: str, applied: Mapping[str, Stamp], expires_at: int,
               entry: str | None = None) -> None:
        self._blink()
        super().record(task, owner, applied, expires_at, entry)


def _order(store: MemoryStore, t: Time) -> TaskOrder:
    return TaskOrder(store, clock=lambda: 1_780_000_000.0 + t.now, monotonic=t.mono, sleep=t.sleep)


def test_the_claim_and_the_record_ride_out_a_blip() -> None:
    t, store = Time(), Blinking(down=2)
    order = _order(store, t)
    stamp = Issue(datetime(2026, 6, 1, tzinfo=UTC), "sqs:m1").stamp(None, 0)
    claim = order.claim(TaskKey(1, 7), ["SchedAt"], stamp, t.now + 30)
    assert claim.kept == ("SchedAt",) and store.calls == 3  # refused twice, then leased
    store.down, store.calls = 1, 0
    order.applied(claim, None, deadline=t.now + 30)
    assert store.calls == 2  # refused once, then recorded
    assert MemoryStore.lease(store, TaskKey(1, 7), "look", 0, 0).applied["SchedAt"] == stamp  # and released


def test_a_misconfigured_store_is_not_tried_again_by_the_claim() -> None:
    t, store = Time(), Blinking(down=99, fault=StoreMisconfigured(NAME, "no such database"))
    with pytest.raises(StoreMisconfigured):
        _order(store, t).claim(TaskKey(1, 7), ["SchedAt"], Issue(datetime(2026, 6, 1, tzinfo=UTC)).stamp(None, 0),
                               t.now + 30)
    assert store.calls == 1


class LockedOut(MemorySlots):
    name = "dynamodb:orders"

    def reserve(self, pk: str, now_ms: int, step_ms: int, reach_ms: int, known_ms: int | None) -> tuple[int, bool]:
        raise StoreMisconfigured(self.name, "no permission (dynamodb:UpdateItem)")


def test_the_rate_budget_names_a_configuration_fault_and_paces_itself(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    t = Time()
    limiter = FleetLimiter(LockedOut(), "rate#1#modify", 5, 1, clock=lambda: 1_780_000_000.0 + t.now,
                           monotonic=t.mono, sleep=t.sleep)
    limiter.acquire(t.now + 30)  # the fallback gives a slot: the budget is not the guarantee, the order is
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [(getattr(r, "store", None), getattr(r, "cause", None)) for r in errors] == [
        ("dynamodb:orders", "no permission (dynamodb:UpdateItem)")]
    assert any("rate store unreachable" in r.getMessage() for r in caplog.records)
