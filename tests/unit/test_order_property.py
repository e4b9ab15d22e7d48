"""The order key as a property (DESIGN "Order"), in this process's memory: for random histories with ties,
delivered in random orders with duplicates, each field ends with the change of the largest key."""

from __future__ import annotations

from hypothesis import given, settings

from handler.order.key import Stamp, TaskKey
from handler.order.task import TaskOrder
from handler.state.memory import MemoryStore
from tests.support.order_history import Change, Delivery, expected, histories, replay

TASK = TaskKey(1400000001, 62)


@settings(max_examples=300, deadline=None)
@given(histories())
def test_each_field_ends_with_the_change_of_the_largest_key(history: tuple[list[Change], list[Delivery]]) -> None:
    changes, deliveries = history
    assert replay(TaskOrder(MemoryStore()), TASK, changes, deliveries) == expected(changes)


def test_the_key_string_orders_exactly_as_its_parts() -> None:
    stamps = [Stamp(ms, by, seq, pos) for ms in (0, 1, 10 ** 14) for by in ("", "a", "b")
              for seq in (0, 9, 10 ** 39) for pos in (0, 1, 999_999)]
    by_key = sorted(stamps, key=lambda s: s.key)
    by_parts = sorted(stamps, key=lambda s: (s.issued_ms, s.seq, s.key.split(".")[2], s.pos))
    assert by_key == by_parts
    assert all(len(s.key) == len(stamps[0].key) for s in stamps)
    assert all(Stamp.from_key(s.key, s.by) == s for s in stamps)
