"""Per-task order: which fields of a modification are newer than what was applied, under the task's lease.

A field is sent only when the change's order key (``Stamp.key``: issue time, queue order, the change's id,
position) is greater than the key last applied to that field of the task; an equal key is the same change
(a redelivery) and is not sent twice. Two different changes issued in the same millisecond are told apart
by the rest of the key, so every instance ends a tie the same way whichever it saw first. Only a success
raises the stamps; a failure records nothing. The lease lasts until the invocation's deadline (plus the
margin the adapter keeps to report), so a crashed process frees the task by itself.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

from handler.order.faults import steady
from handler.order.key import Stamp, TaskKey
from handler.order.store import LeaseTaken, TaskState, TaskStore

LEASE_WAIT = 1.0  # seconds a modification waits for a busy task before it is retried later
LEASE_POLL = 0.1  # seconds between tries while waiting (jittered)
LEASE_MARGIN = 2.0  # the lease outlives the deadline by what the adapter needs to report
KEEP_AFTER = timedelta(days=28)  # an item's TTL: some weeks after its SchedAt (or after the change)


class TaskBusy(Exception):
    """The task's lease stayed taken for as long as this modification could wait."""


class Claim(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    """The outcome of asking for a task: the fields to send, and those a newer (or the same) change won."""

    task: TaskKey
    owner: str
    stamp: Stamp
    kept: tuple[str, ...]
    won: Mapping[str, Stamp] = MappingProxyType({})  # dropped field -> the change applied to it
    held: tuple[str, ...] = ()  # dropped because a later entry of the same payload sets it with a greater key

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
        held = tuple(name for name in fields if name in later)
        fields = [name for name in fields if name not in later]
        if not fields:
            return Claim(task, "", stamp, (), held=held)
        claim = self._claim(task, fields, stamp, deadline)
        return claim._replace(held=held) if held else claim

    def _claim(self, task: TaskKey, fields: Sequence[str], stamp: Stamp, deadline: float) -> Claim:
        owner = secrets.token_hex(16)  # as unique as a uuid4, without uuid's import of platform at cold start
        until_ms = round((self._clock() + deadline - self._monotonic() + LEASE_MARGIN) * 1000)
        give_up = min(self._monotonic() + LEASE_WAIT, deadline)
        while True:
            try:
                state = steady(lambda: self.store.lease(task, owner, until_ms, round(self._clock() * 1000)),
                               deadline, self._monotonic, self._sleep)  # the same owner: a retry finds its own lease
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
                steady(lambda: self.store.release(task, owner), deadline, self._monotonic, self._sleep)
            return claim

    def applied(self, claim: Claim, sched_at: datetime | None, deadline: float = math.inf) -> None:
        """Record a success: the kept fields now carry this change's stamp; the lease is released.

        Transient store faults are tried again while a try can end before ``deadline`` (``faults.steady``).
        """
        keep_from = max(self._clock(), sched_at.timestamp() if sched_at else 0.0)
        expires_at = int(keep_from + KEEP_AFTER.total_seconds())
        stamps = dict.fromkeys(claim.kept, claim.stamp)
        steady(lambda: self.store.record(claim.task, claim.owner, stamps, expires_at), deadline, self._monotonic,
               self._sleep)

    def release(self, claim: Claim, deadline: float = math.inf) -> None:
        if claim.leased:
            steady(lambda: self.store.release(claim.task, claim.owner), deadline, self._monotonic, self._sleep)


def _decide(task: TaskKey, owner: str, fields: Sequence[str], stamp: Stamp, state: TaskState) -> Claim:
    key = stamp.key
    won = {name: state.applied[name] for name in fields
           if name in state.applied and state.applied[name].key >= key}
    kept = tuple(name for name in fields if name not in won)
    return Claim(task, owner, stamp, kept, won)
