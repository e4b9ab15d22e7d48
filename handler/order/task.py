"""Per-task order: which fields of a modification are newer than what was applied, under the task's lease.

A field is sent only when the change's order key (``Stamp.key``: issue time, queue order, the change's id,
position) is greater than the key last applied to that field of the task; an equal key is the same change
(a redelivery) and is not sent twice. Two different changes issued in the same millisecond are told apart
by the rest of the key, so every instance ends a tie the same way whichever it saw first. Only a success
raises the stamps; a failure records nothing. A field whose last applied key equals this change's was applied
by this very change (``Claim.already``): no newer change won it, so none is named. The lease lasts until the
invocation's deadline (plus the margin the adapter keeps to report), so a crashed process frees the task.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from handler.order.key import Stamp, TaskKey
from handler.order.store import LeaseTaken, TaskState, TaskStore

LEASE_WAIT = 1.0  # seconds a modification waits for a busy task before it is retried later
LEASE_POLL = 0.1  # seconds between tries while waiting (jittered)
LEASE_MARGIN = 2.0  # the lease outlives the deadline by what the adapter needs to finish (FINISH_RESERVE, at least)
KEEP_AFTER = timedelta(days=28)  # an item's TTL: some weeks after its SchedAt (or after the change)


class TaskBusy(Exception):
    """The task's lease stayed taken for as long as this modification could wait."""


@dataclass(frozen=True)
class Claim:
    """The outcome of asking for a task: the fields to send, those a newer change won, those this one applied."""

    task: TaskKey
    owner: str
    stamp: Stamp
    kept: tuple[str, ...]
    won: Mapping[str, Stamp] = field(default_factory=dict)  # dropped field -> the newer change applied to it
    already: tuple[str, ...] = ()  # dropped: last applied by this same change (an equal key: a redelivery)

    @property
    def leased(self) -> bool:
        return bool(self.kept)


class TaskOrder:
    def __init__(self, store: TaskStore, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep

    def claim(self, task: TaskKey, fields: Sequence[str], stamp: Stamp, deadline: float,
              later: frozenset[str] = frozenset()) -> Claim:
        """The one question the service asks: which of ``fields`` this change may send, holding the task.

        A field is sent only when no later entry of the same payload sets it with a greater key (``later``,
        from ``payload.later_fields``: decided without the store) and the store applied nothing newer to it.
        Nothing to send means no lease is held. Raises TaskBusy when another modification holds the task
        past the wait, StoreUnavailable when the store cannot be reached.
        """
        fields = [name for name in fields if name not in later]
        if not fields:
            return Claim(task, "", stamp, ())
        return self._claim(task, fields, stamp, deadline)

    def _claim(self, task: TaskKey, fields: Sequence[str], stamp: Stamp, deadline: float) -> Claim:
        owner = secrets.token_hex(16)  # as unique as a uuid4, without uuid's import of platform at cold start
        until_ms = round((self._clock() + deadline - self._monotonic() + LEASE_MARGIN) * 1000)
        give_up = min(self._monotonic() + LEASE_WAIT, deadline)
        while True:
            try:
                state = self.store.lease(task, owner, until_ms, round(self._clock() * 1000))
            except LeaseTaken as taken:
                claim = _decide(task, owner, fields, stamp, taken.state)
                if not claim.kept:
                    return claim  # older than what is applied: no need to wait for the holder
                if self._monotonic() + LEASE_POLL >= give_up:
                    raise TaskBusy(f"task {task.task_id} is being modified by another invocation") from None
                self._sleep(LEASE_POLL * random.uniform(0.5, 1.5))  # noqa: S311 (jitter, not security)
                continue
            claim = _decide(task, owner, fields, stamp, state)
            if not claim.kept:
                self.store.release(task, owner)
            return claim

    def applied(self, claim: Claim, sched_at: datetime | None) -> None:
        """Record a success: the kept fields now carry this change's stamp; the lease is released."""
        keep_from = max(self._clock(), sched_at.timestamp() if sched_at else 0.0)
        expires_at = int(keep_from + KEEP_AFTER.total_seconds())
        self.store.record(claim.task, claim.owner, dict.fromkeys(claim.kept, claim.stamp), expires_at)

    def release(self, claim: Claim) -> None:
        if claim.leased:
            self.store.release(claim.task, claim.owner)


def _decide(task: TaskKey, owner: str, fields: Sequence[str], stamp: Stamp, state: TaskState) -> Claim:
    key = stamp.key
    last = {name: state.applied[name] for name in fields if name in state.applied}
    won = {name: applied for name, applied in last.items() if applied.key > key}
    already = tuple(name for name, applied in last.items() if applied.key == key)
    kept = tuple(name for name in fields if name not in won and name not in already)
    return Claim(task, owner, stamp, kept, won, already)
