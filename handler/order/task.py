"""Per-task order: which fields of a modification are newer than what was applied, under the task's lease.

A field is sent only when the change's order key (``Stamp.key``: issue time, queue order, the change's id,
position) is greater than the key last applied to that field of the task; an equal key is the same change
(a redelivery) and is not sent twice. Two different changes issued in the same millisecond are told apart
by the rest of the key, so every instance ends a tie the same way whichever it saw first. Only a success
raises the stamps; a failure records nothing. A field whose last applied key equals this change's was applied
by this very change (``Claim.already``): no newer change won it, so none is named. The lease lasts until the
invocation's deadline (plus the margin the adapter keeps to report), so a crashed process frees the task.

Given a ``Draft`` (``handler.order.history``), the order also writes the task's history: a success's entry in the
record, a superseded change's in the release of its lease (or, without one, in a write of its own), a dead
letter's in a write of its own (``noted``). A history that cannot be written is a WARNING and a metric, never the
modification's failure: a combined write that fails is made again without the entry. A change already applied
adds no entry.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple, TypeVar

from handler.im.codes import SUPERSEDED
from handler.order import history
from handler.order.faults import steady
from handler.order.history import Draft
from handler.order.key import Stamp, TaskKey
from handler.order.store import LeaseTaken, StoreUnavailable, TaskState, TaskStore

T = TypeVar("T")

LEASE_WAIT = 1.0  # seconds a modification waits for a busy task before it is retried later
LEASE_POLL = 0.1  # seconds between tries while waiting (jittered)
LEASE_MARGIN = 2.0  # the lease outlives the deadline by what the adapter needs to finish (FINISH_RESERVE, at least)
KEEP_AFTER = timedelta(days=28)  # an item's TTL: some weeks after its SchedAt (or after the change)


class TaskBusy(Exception):
    """The task's lease stayed taken for as long as this modification could wait."""


class Claim(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    """The outcome of asking for a task: the fields to send, those a newer change won, those this one applied."""

    task: TaskKey
    owner: str
    stamp: Stamp
    kept: tuple[str, ...]
    won: Mapping[str, Stamp] = MappingProxyType({})  # dropped field -> the newer change applied to it
    held: Mapping[str, Stamp] = MappingProxyType({})  # dropped: a later entry of the payload sets it newer
    already: tuple[str, ...] = ()  # dropped: last applied by this same change (an equal key: a redelivery)

    @property
    def leased(self) -> bool:
        return bool(self.kept)

    @property
    def already_applied(self) -> bool:
        """Nothing to send and nothing another change won: every field was last applied by this same change (a
        redelivery, a replay, a redrive of what went through). Its outcome is in the history already."""
        return not self.kept and not self.won and not self.held and bool(self.already)

    @property
    def left_out(self) -> dict[str, Stamp]:
        """Every field left out and the change that won it (a later entry of the payload, or the store's)."""
        return {**self.held, **self.won}


class TaskOrder:
    def __init__(self, store: TaskStore, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep

    def claim(self, task: TaskKey, fields: Sequence[str], stamp: Stamp, deadline: float,
              later: Mapping[str, Stamp] | None = None, draft: Draft | None = None) -> Claim:
        """The one question the service asks: which of ``fields`` this change may send, holding the task.

        A field is sent only when no later entry of the same payload sets it with a greater key (``later``,
        field -> that entry's stamp, from ``payload.later_changes``: decided without the store) and the store
        applied nothing newer to it. Nothing to send means no lease is held, and (given a ``draft``) the
        superseded change's entry is written. Raises TaskBusy when another modification holds the task past the
        wait, StoreUnavailable when the store cannot be reached.
        """
        later = later or {}
        held = {name: later[name] for name in fields if name in later}
        fields = [name for name in fields if name not in later]
        if not fields:
            claim = Claim(task, "", stamp, (), held=held)
            self._note(claim, draft, history.SUPERSEDED, SUPERSEDED)
            return claim
        return self._claim(task, fields, stamp, deadline, held, draft)

    def _claim(self, task: TaskKey, fields: Sequence[str], stamp: Stamp, deadline: float,
               held: Mapping[str, Stamp], draft: Draft | None) -> Claim:
        owner = secrets.token_hex(16)  # as unique as a uuid4, without uuid's import of platform at cold start
        until_ms = round((self._clock() + deadline - self._monotonic() + LEASE_MARGIN) * 1000)
        give_up = min(self._monotonic() + LEASE_WAIT, deadline)
        while True:
            try:
                # the same owner: a retry whose answer was lost finds its own lease
                state = self._steady(lambda: self.store.lease(task, owner, until_ms, round(self._clock() * 1000)),
                                     deadline)
            except LeaseTaken as taken:
                claim = _decide(task, "", fields, stamp, taken.state, held)
                if not claim.kept:  # older than what is applied: no need to wait for the holder
                    self._note(claim, draft, history.SUPERSEDED, SUPERSEDED)
                    return claim
                if self._monotonic() + LEASE_POLL >= give_up:
                    raise TaskBusy(f"task {task.task_id} is being modified by another invocation") from None
                self._sleep(LEASE_POLL * random.uniform(0.5, 1.5))  # noqa: S311 (jitter, not security)
                continue
            claim = _decide(task, owner, fields, stamp, state, held)
            if not claim.kept:  # give the lease back, the superseded change's entry in the same write
                entry = self._entry(claim, draft, history.SUPERSEDED, SUPERSEDED)
                self._with_entry(claim, entry, lambda kept: self.store.release(task, owner, kept), deadline)
            return claim

    def applied(self, claim: Claim, sched_at: datetime | None, draft: Draft | None = None,
                deadline: float = math.inf) -> None:
        """Record a success: the kept fields now carry this change's stamp; the lease is released; the entry
        (given a ``draft``) is appended in the same write."""
        now = self._clock()
        expires_at = int(max(now, sched_at.timestamp() if sched_at else 0.0) + KEEP_AFTER.total_seconds())
        applied = dict.fromkeys(claim.kept, claim.stamp)
        self._with_entry(claim, self._entry(claim, draft, history.SUCCEEDED, 0),
                         lambda kept: self.store.record(claim.task, claim.owner, applied, expires_at, kept), deadline)

    def release(self, claim: Claim, deadline: float = math.inf) -> None:
        if claim.leased:
            self._steady(lambda: self.store.release(claim.task, claim.owner), deadline)

    @property
    def keeps_history(self) -> bool:
        """Whether the store keeps the tasks' histories (DESIGN: without a store there is no history)."""
        return self.store.keeps_history

    def noted(self, task: TaskKey, draft: Draft, outcome: str, code: int) -> None:
        """Append a finished outcome's entry in a write of its own (a dead letter); never raises. The draft
        names what was left out (``Draft.left_out``)."""
        if not self.keeps_history:
            return
        now = self._clock()
        try:
            self.store.note(task, draft.entry(outcome, code, now), int(now + KEEP_AFTER.total_seconds()))
        except StoreUnavailable as exc:
            history.not_written(task, self.store.name, exc)

    def _note(self, claim: Claim, draft: Draft | None, outcome: str, code: int) -> None:
        """A change superseded without holding the lease: its entry in a write of its own."""
        if draft is not None and not claim.already_applied:
            self.noted(claim.task, draft._replace(left_out=claim.left_out), outcome, code)

    def _entry(self, claim: Claim, draft: Draft | None, outcome: str, code: int) -> str | None:
        """The entry ``claim``'s change leaves, or None: no history kept, no draft, or already applied (it has one)."""
        if draft is None or not self.keeps_history or claim.already_applied:
            return None
        return draft._replace(left_out=claim.left_out).entry(outcome, code, self._clock())

    def _with_entry(self, claim: Claim, entry: str | None, write: Callable[[str | None], None],
                    deadline: float) -> None:
        """``write(entry)``: transient store faults are tried again while a try can end before ``deadline``
        (``faults.steady``); a write that fails otherwise is made once more without the entry, so the order
        never waits on its history."""
        try:
            self._steady(lambda: write(entry), deadline)
        except StoreUnavailable as exc:
            if entry is None or exc.transient:
                raise  # the store is out of reach: the order without the entry would fail the same way
            history.not_written(claim.task, self.store.name, exc)
            self._steady(lambda: write(None), deadline)

    def _steady(self, call: Callable[[], T], deadline: float) -> T:
        return steady(call, deadline, self._monotonic, self._sleep)


def _decide(task: TaskKey, owner: str, fields: Sequence[str], stamp: Stamp, state: TaskState,
            held: Mapping[str, Stamp]) -> Claim:
    key = stamp.key
    last = {name: state.applied[name] for name in fields if name in state.applied}
    won = {name: applied for name, applied in last.items() if applied.key > key}
    already = tuple(name for name, applied in last.items() if applied.key == key)
    kept = tuple(name for name in fields if name not in won and name not in already)
    return Claim(task, owner, stamp, kept, won, held, already)
