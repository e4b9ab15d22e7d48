"""Per-task order in one process: which fields are sent, what a success records, the lease."""

from __future__ import annotations

import pytest

from handler.model import Item
from handler.ordering import later_fields
from handler.state import Stamp, TaskKey
from handler.state.memory import MemoryStore
from handler.state.order import LEASE_WAIT, TaskBusy, TaskOrder

TASK = TaskKey(1400000001, 77)
BOTH = ("SchedAt", "Content")


class Clock:
    """Wall and monotonic time that only move when a test (or a wait) moves them."""

    def __init__(self) -> None:
        self.now = 1_780_000_000.0
        self.slept = 0.0

    def wall(self) -> float:
        return self.now

    def mono(self) -> float:
        return self.now - 1_700_000_000.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def order_on(store: MemoryStore, clock: Clock) -> TaskOrder:
    return TaskOrder(store, clock=clock.wall, monotonic=clock.mono, sleep=clock.sleep)


def test_only_fields_newer_than_the_applied_ones_are_kept(clock: Clock) -> None:
    order = order_on(MemoryStore(), clock)
    first = order.claim(TASK, BOTH, Stamp(1000, "sqs:a"), clock.mono() + 30)
    assert first.kept == BOTH and first.won == {}
    order.applied(first, None)
    # older than both: nothing is kept, and each field says which change won it
    second = order.claim(TASK, BOTH, Stamp(999, "sqs:b"), clock.mono() + 30)
    assert second.kept == () and second.won == {"SchedAt": Stamp(1000, "sqs:a"), "Content": Stamp(1000, "sqs:a")}
    third = order.claim(TASK, ("Content",), Stamp(1001, "http:c"), clock.mono() + 30)
    assert third.kept == ("Content",)
    order.applied(third, None)
    # the first change again (a redelivery): its SchedAt is the one applied, its Content is older now
    fourth = order.claim(TASK, BOTH, Stamp(1000, "sqs:a"), clock.mono() + 30)
    assert fourth.kept == () and fourth.won == {"SchedAt": Stamp(1000, "sqs:a"), "Content": Stamp(1001, "http:c")}


def test_the_same_issue_time_is_not_sent_again(clock: Clock) -> None:
    order = order_on(MemoryStore(), clock)
    claim = order.claim(TASK, ("SchedAt",), Stamp(5000, "sqs:m"), clock.mono() + 30)
    order.applied(claim, None)
    again = order.claim(TASK, ("SchedAt",), Stamp(5000, "sqs:m"), clock.mono() + 30)
    assert again.kept == () and again.won == {"SchedAt": Stamp(5000, "sqs:m")}


def test_a_failure_records_nothing_and_frees_the_task(clock: Clock) -> None:
    store = MemoryStore()
    order = order_on(store, clock)
    claim = order.claim(TASK, ("SchedAt",), Stamp(5000), clock.mono() + 30)
    order.release(claim)
    retry = order.claim(TASK, ("SchedAt",), Stamp(5000), clock.mono() + 30)
    assert retry.kept == ("SchedAt",) and clock.slept == 0  # not taken, and the stamp was not raised


def test_a_slower_success_never_lowers_a_stamp() -> None:
    store = MemoryStore()
    store.record(TASK, "a", {"SchedAt": Stamp(9000, "new")}, 0)
    store.record(TASK, "b", {"SchedAt": Stamp(8000, "old"), "Content": Stamp(8000, "old")}, 0)
    assert store.lease(TASK, "c", 1, 0).applied == {"SchedAt": Stamp(9000, "new"), "Content": Stamp(8000, "old")}


def test_a_busy_task_is_waited_for_briefly_then_given_up(clock: Clock) -> None:
    order = order_on(MemoryStore(), clock)
    held = order.claim(TASK, ("SchedAt",), Stamp(1000), clock.mono() + 30)
    assert held.leased
    with pytest.raises(TaskBusy):
        order.claim(TASK, ("SchedAt",), Stamp(2000), clock.mono() + 30)
    assert LEASE_WAIT * 0.5 <= clock.slept <= LEASE_WAIT + 0.2


def test_a_busy_task_does_not_hold_back_a_change_that_is_already_older(clock: Clock) -> None:
    order = order_on(MemoryStore(), clock)
    order.applied(order.claim(TASK, ("SchedAt",), Stamp(3000), clock.mono() + 30), None)
    order.claim(TASK, ("Content",), Stamp(4000), clock.mono() + 30)  # held, not released
    older = order.claim(TASK, ("SchedAt",), Stamp(2000), clock.mono() + 30)
    assert older.kept == () and not older.leased and clock.slept == 0


def test_a_lease_runs_out_at_the_deadline_of_its_holder(clock: Clock) -> None:
    order = order_on(MemoryStore(), clock)
    order.claim(TASK, ("SchedAt",), Stamp(1000), clock.mono() + 3)  # its holder crashed
    clock.now += 3 + 2.1  # past the deadline and the reporting margin
    assert order.claim(TASK, ("SchedAt",), Stamp(2000), clock.mono() + 30).kept == ("SchedAt",)


def test_the_memory_store_is_bounded_and_keeps_leased_tasks() -> None:
    store = MemoryStore(max_tasks=3)
    store.lease(TaskKey(1, 1), "holder", 10**15, 0)
    for task_id in range(2, 10):
        store.record(TaskKey(1, task_id), "x", {"SchedAt": Stamp(task_id)}, 0)
    assert len(store) == 3
    with pytest.raises(Exception, match="lease"):
        store.lease(TaskKey(1, 1), "other", 10**15, 0)


def _items(*parsed: object) -> list[Item]:
    return [Item("", p) for p in parsed]


def test_a_later_entry_for_the_same_task_counts_as_newer() -> None:
    items = _items(
        {"TaskID": 5, "SchedAt": "a", "Content": {}},
        {"TaskID": "5", "SchedAt": "b"},
        {"TaskID": 6, "Content": {}},
        {"TaskID": 5, "Content": None},  # null sets nothing
        "not an object",
        {"TaskID": 5, "Sdkappid": 9, "SchedAt": "c"},
    )
    # one app, 9: an entry without Sdkappid is app 9's
    assert later_fields(items, only_app=9) == [frozenset({"SchedAt"}), frozenset({"SchedAt"}), frozenset(),
                                               frozenset({"SchedAt"}), frozenset(), frozenset()]
    # several apps: app 9's task 5 is not the task of entries that name no app (they are refused)
    assert later_fields(items) == [frozenset({"SchedAt"})] + [frozenset()] * 5


def test_another_apps_task_of_the_same_number_is_another_task() -> None:
    got = later_fields(_items({"TaskID": 5, "Sdkappid": 8, "SchedAt": "a"},
                              {"TaskID": 5, "Sdkappid": 9, "SchedAt": "b"},
                              {"TaskID": 5, "Sdkappid": 8, "Content": {}}))
    assert got == [frozenset({"Content"}), frozenset(), frozenset()]
