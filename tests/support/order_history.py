"""Random histories of changes to one task, delivered in random orders with duplicates (DESIGN "Order").

Shared by the property tests over each home of the store (memory in tests/unit, DynamoDB in
tests/integration): whatever the order of delivery, each field must end with the value of the change
with the largest order key that sets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from handler.order.key import Stamp, TaskKey
from handler.order.task import TaskOrder

FIELDS = ("SchedAt", "Content")


@dataclass(frozen=True)
class Change:
    stamp: Stamp
    fields: tuple[str, ...]

    def value(self, name: str) -> str:
        return f"{name} of {self.stamp.key}"


@dataclass(frozen=True)
class Delivery:
    change: int  # index into the history
    lease_lost: bool  # the lease ran out before the success was recorded (a call slower than the deadline)


_change = st.builds(
    Change,
    st.builds(Stamp, st.sampled_from([1_000, 1_001, 1_002]),  # few times: many ties
              st.sampled_from(["", "sqs:first", "sqs:second", "http:third"]),
              st.sampled_from([0, 0, 7, 10 ** 39]), st.sampled_from([0, 0, 1, 2])),
    st.sampled_from([("SchedAt",), ("Content",), FIELDS]),
)


@st.composite
def histories(draw: st.DrawFn, most: int = 8) -> tuple[list[Change], list[Delivery]]:
    """Changes with distinct keys (an equal key is the same change), each delivered once or more, any order."""
    changes = draw(st.lists(_change, min_size=1, max_size=most, unique_by=lambda c: c.stamp.key))
    again = draw(st.lists(st.integers(0, len(changes) - 1), max_size=most))
    order = draw(st.permutations([*range(len(changes)), *again]))
    return changes, [Delivery(i, draw(st.booleans())) for i in order]


def replay(order: TaskOrder, task: TaskKey, changes: Sequence[Change],
           deliveries: Sequence[Delivery]) -> dict[str, str]:
    """Deliver each change as the modifier would: claim, "send" the kept fields, record. Returns the task."""
    server: dict[str, str] = {}
    for delivery in deliveries:
        change = changes[delivery.change]
        claim = order.claim(task, change.fields, change.stamp, deadline=1e12)
        server.update({name: change.value(name) for name in claim.kept})
        if claim.kept and delivery.lease_lost:
            order.release(claim)  # as if it ran out; the success is recorded without it
            order.store.record(task, "no-longer-the-owner", dict.fromkeys(claim.kept, claim.stamp), 0)
        elif claim.kept:
            order.applied(claim, None)
    return server


def expected(changes: Sequence[Change]) -> dict[str, str]:
    """Per field, the value of the change with the largest key that sets it."""
    out: dict[str, str] = {}
    for name in FIELDS:
        setting = [c for c in changes if name in c.fields]
        if setting:
            out[name] = max(setting, key=lambda c: c.stamp.key).value(name)
    return out
