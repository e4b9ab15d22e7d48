"""Per-task order in one process: which fields are sent, what a success records, the lease."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handler.model import Item
from handler.order.key import Issue, Stamp, TaskKey
from handler.order.payload import later_changes
from handler.order.store import LeaseTaken
from handler.order.task import LEASE_MARGIN, LEASE_WAIT, TaskBusy, TaskOrder
from handler.sources import FINISH_RESERVE
from handler.state.memory import MemoryStore

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
    # the first change again (a redelivery): it applied SchedAt itself (never "won" by itself), its Content is
    # older now
    fourth = order.claim(TASK, BOTH, Stamp(1000, "sqs:a"), clock.mono() + 30)
    assert fourth.kept == () and fourth.won == {"Content": Stamp(1001, "http:c")} and fourth.already == ("SchedAt",)


def test_the_same_change_is_not_sent_again_and_is_already_applied(clock: Clock) -> None:
    order = order_on(MemoryStore(), clock)
    claim = order.claim(TASK, ("SchedAt",), Stamp(5000, "sqs:m"), clock.mono() + 30)
    order.applied(claim, None)
    again = order.claim(TASK, ("SchedAt",), Stamp(5000, "sqs:m"), clock.mono() + 30)
    assert again.kept == () and again.won == {} and again.already == ("SchedAt",) and not again.leased
    # another change of the same millisecond is not the same change: its key differs by the id
    other = order.claim(TASK, ("SchedAt",), Stamp(5000, "sqs:n"), clock.mono() + 30)
    assert other.already == ()


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


def test_a_lease_outlives_the_deadline_by_what_finishing_needs() -> None:
    # the deadline a holder is given keeps FINISH_RESERVE back: a lease shorter than that could be taken while
    # its holder still writes its dead letters
    assert LEASE_MARGIN >= FINISH_RESERVE


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
    with pytest.raises(LeaseTaken) as taken:
        store.lease(TaskKey(1, 1), "other", 10**15, 0)
    assert taken.value.until_ms == 10**15  # the holder's lease, kept through the evictions


def _items(*parsed: object) -> list[Item]:
    return [Item("", p) for p in parsed]


PAYLOAD = Issue(datetime(2030, 6, 1, 8, 0, 0, tzinfo=UTC), "sqs:m1")


def _later(items: list[Item], only_app: int | None = None, issue: Issue = PAYLOAD) -> list[frozenset[str]]:
    return [frozenset(later) for later in later_changes(items, [issue.entry(i) for i in range(len(items))], only_app)]


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
    assert _later(items, only_app=9) == [frozenset({"SchedAt"}), frozenset({"SchedAt"}), frozenset(),
                                               frozenset({"SchedAt"}), frozenset(), frozenset()]
    # several apps: app 9's task 5 is not the task of entries that name no app (they are refused)
    assert _later(items) == [frozenset({"SchedAt"})] + [frozenset()] * 5


def test_another_apps_task_of_the_same_number_is_another_task() -> None:
    got = _later(_items({"TaskID": 5, "Sdkappid": 8, "SchedAt": "a"},
                              {"TaskID": 5, "Sdkappid": 9, "SchedAt": "b"},
                              {"TaskID": 5, "Sdkappid": 8, "Content": {}}))
    assert got == [frozenset({"Content"}), frozenset(), frozenset()]


def test_a_later_entry_holds_back_only_what_it_sets_with_a_greater_key() -> None:
    def entry(issued: str | None, **fields: object) -> dict[str, object]:
        return {"TaskID": 5, "Type": "All", **fields, **({"IssuedAt": issued} if issued else {})}

    # the producer says the first is newer: the second holds nothing back (the store supersedes it)
    assert _later(_items(entry("2030-06-01T08:00:05Z", SchedAt="a"), entry("2030-06-01T08:00:03Z", SchedAt="b"))) \
        == [frozenset(), frozenset()]
    # equal times (given, or the payload's own): position decides, the later entry is newer
    assert _later(_items(entry("2030-06-01T08:00:05Z", SchedAt="a"), entry("2030-06-01T08:00:05.000+00:00",
                                                                            SchedAt="b"))) == [{"SchedAt"}, set()]
    assert _later(_items(entry(None, SchedAt="a"), entry("2030-06-01T08:00:00Z", SchedAt="b"))) == [{"SchedAt"}, set()]
    # a later entry with an IssuedAt that cannot be read counts as issued with the payload: it holds back
    assert _later(_items(entry(None, SchedAt="a"), entry("yesterday", SchedAt="b"))) == [{"SchedAt"}, set()]
    # the newest of several later entries decides, field by field
    items = _items(entry("2030-06-01T08:00:04Z", SchedAt="a", Content={}), entry("2030-06-01T08:00:09Z", SchedAt="b"),
                   entry("2030-06-01T08:00:01Z", Content={}))
    assert _later(items) == [{"SchedAt"}, set(), set()]


def test_a_tie_between_two_changes_ends_the_same_whichever_comes_first(clock: Clock) -> None:
    one, other = Stamp(5000, "sqs:first-id"), Stamp(5000, "sqs:second-id")
    newer = max(one, other, key=lambda s: s.key)
    for order in ((one, other), (other, one)):
        task_order = order_on(MemoryStore(), clock)
        kept = []
        for stamp in order:
            claim = task_order.claim(TASK, ("SchedAt",), stamp, clock.mono() + 30)
            if claim.kept:
                task_order.applied(claim, None)
                kept.append(stamp)
        assert kept[-1] == newer  # the other one was sent first or not at all, never last


def test_the_queue_order_breaks_a_tie_before_the_id_and_position_only_after(clock: Clock) -> None:
    assert Stamp(5000, "sqs:zzz", seq=2).key > Stamp(5000, "sqs:aaa", seq=1).key
    assert Stamp(5000, "sqs:m", seq=1, pos=0).key < Stamp(5000, "sqs:m", seq=1, pos=1).key
    assert Stamp(5001, "sqs:m", pos=0).key > Stamp(5000, "sqs:m", seq=10 ** 39, pos=9).key
    order = order_on(MemoryStore(), clock)
    order.applied(order.claim(TASK, ("SchedAt",), Stamp(5000, "sqs:b", seq=7), clock.mono() + 30), None)
    assert order.claim(TASK, ("SchedAt",), Stamp(5000, "sqs:a", seq=6), clock.mono() + 30).kept == ()
    assert order.claim(TASK, ("SchedAt",), Stamp(5000, "sqs:a", seq=8), clock.mono() + 30).kept == ("SchedAt",)


def test_stamps_compare_only_by_their_key() -> None:
    # A stamp is a tuple underneath (issue 29: cheaper to build than a dataclass), whose own order would put the
    # id before the queue order: comparing two stamps refuses, so no code orders changes by it by mistake.
    older, newer = Stamp(5000, "sqs:zzz", seq=1), Stamp(5000, "sqs:aaa", seq=2)
    for compare in (lambda: older < newer, lambda: older <= newer, lambda: older > newer, lambda: older >= newer):
        with pytest.raises(TypeError, match="compare Stamp.key"):
            compare()
    assert older.key < newer.key
    same = Stamp(5000, "sqs:zzz", seq=1)
    assert older == same and older != newer and len({older, same}) == 1
