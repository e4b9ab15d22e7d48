"""The fleet's shared state behind one small interface (DESIGN "Order: a newer change is never undone").

A store keeps, per task (SDKAppID + TaskID), the order key (``Stamp.key``) of the change last applied to each
ordered field and a short lease, so that two modifications of one task never run at once anywhere in the fleet.
Three homes with the same behaviour: DynamoDB (``IM_STATE_STORE=dynamodb:TABLE``), Redis or Valkey
(``redis://[:PASSWORD@]HOST:PORT[/DB]``, ``rediss://`` with TLS) and this process's memory (laptop, tests).
This module imports nothing heavy: boto3 or redis-py comes only with the store that needs it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from handler.im.ratelimit import Pacer, RateLimiter

if TYPE_CHECKING:
    from handler.state.rate import Slots


@dataclass(frozen=True)
class TaskKey:
    sdkappid: int
    task_id: int

    @property
    def pk(self) -> str:
        return f"task#{self.sdkappid}#{self.task_id}"


KEY_WIDTHS = (15, 40, 16, 6)  # issue ms · queue order · id digest · position: fixed widths, digits and hex only


@dataclass(frozen=True)
class Stamp:
    """A change's order key (DESIGN "Order"): issue time, the queue's own order, the change's id, position.

    ``key`` is the whole key as one fixed-width string of digits and hex that compares bytewise exactly as
    the tuple ``(issued_ms, seq, id digest, pos)`` does: every home (memory, DynamoDB, Redis) stores and
    compares that string, so none compares a coarser key than another. The id enters as a digest, so a tie
    between two different changes ends the same way on every instance; ``by`` itself is kept for people.
    """

    issued_ms: int
    by: str = ""  # the change's id: ``sqs:MESSAGE_ID``, ``http:REQUEST_ID``, ...
    seq: int = 0  # the queue's own order (FIFO SequenceNumber within a message group); 0 when it has none
    pos: int = 0  # position within one payload; breaks only otherwise equal keys

    @cached_property  # computed once per stamp: a store compares the one it keeps many times
    def key(self) -> str:
        return f"{self.issued_ms:015d}.{self.seq:040d}.{_digest(self.by)}.{self.pos:06d}"

    @classmethod
    def from_key(cls, key: str, by: str = "") -> Stamp:
        """The stamp a store kept (its key and, beside it, the id as written)."""
        issued, seq, _digest_part, pos = key.split(".")
        return cls(int(issued), by, int(seq), int(pos))


def _digest(by: str) -> str:
    return hashlib.blake2b(by.encode(), digest_size=KEY_WIDTHS[2] // 2).hexdigest() if by else "0" * KEY_WIDTHS[2]


@dataclass(frozen=True)
class Issue:
    """A modification's issue time as its trigger knows it, where it came from, and its place in the queue."""

    at: datetime
    by: str = ""
    caller_waiting: bool = False  # someone waits on the answer (HTTP): may reserve further ahead in the budget
    seq: int = 0  # the queue's own order (FIFO SequenceNumber), 0 when none
    pos: int = 0  # the position of the payload's first entry: 0, or a redriven entry's own (it travels alone)

    def stamp(self, at: datetime | None = None, pos: int = 0) -> Stamp:
        return Stamp(round((at or self.at).timestamp() * 1000), self.by, self.seq, pos)

    def entry(self, index: int) -> Issue:
        """The issue of a payload's entry ``index``: the same change, one position further."""
        return replace(self, pos=self.pos + index) if index else self


@dataclass(frozen=True)
class TaskState:
    """What the store knows of a task: the stamp of the change last applied to each field."""

    applied: Mapping[str, Stamp] = field(default_factory=dict)


class LeaseTaken(Exception):
    """Another modification of the task holds its lease; ``state`` is the task as the store has it."""

    def __init__(self, state: TaskState, until_ms: int) -> None:
        super().__init__("the task's lease is held by another modification")
        self.state = state
        self.until_ms = until_ms


class StoreUnavailable(Exception):
    """The store could not be reached or refused the call; the message names the store, nothing else."""


class TaskStore(Protocol):
    name: str

    def lease(self, task: TaskKey, owner: str, until_ms: int, now_ms: int) -> TaskState:
        """Take the task's lease (free, expired, or already ``owner``'s) and return its state, or raise LeaseTaken."""

    def record(self, task: TaskKey, owner: str, applied: Mapping[str, Stamp], expires_at: int) -> None:
        """After a success: raise the fields' stamps (never lower them) and release the lease."""

    def release(self, task: TaskKey, owner: str) -> None:
        """Give the lease back without recording anything (a failure records nothing)."""


WORKER_AHEAD = 2.0  # seconds ahead of now a queue worker may reserve in the fleet's rate budget: room for
# eight busy workers' slots (8 x 0.21 s), so they book at their first write instead of polling for a place
CALLER_AHEAD = 3.0  # ... and a waiting caller (HTTP): it queues behind at most WORKER_AHEAD of backlog


def open_store(spec: str | None) -> TaskStore:
    """The store ``IM_STATE_STORE`` names; this process's memory when it names none."""
    if not spec:
        from handler.state.memory import MemoryStore

        return MemoryStore()
    return _home(spec)[0]


def open_pacing(spec: str | None, rate: float, fallback: float, api: str) -> Callable[[int], Pacer]:
    """A pacer for each app: the fleet's budget in the store ``IM_STATE_STORE`` names, else this process's.

    A rate of 0 turns pacing off either way.
    """
    if not spec or rate <= 0:
        return lambda _app: RateLimiter(rate)
    from handler.state.rate import FleetLimiter

    slots = open_slots(spec)
    return lambda app: FleetLimiter(slots, f"rate#{app}#{api}", rate, fallback)


def open_slots(spec: str) -> Slots:
    """The fleet's send slots in the store ``spec`` names (a shared home: DynamoDB or Redis)."""
    return _home(spec)[1]


def _dynamodb(spec: str) -> tuple[TaskStore, Slots]:
    from handler.state.dynamodb import DynamoSlots, DynamoStore  # boto3 only when the store is configured

    table = spec.removeprefix("dynamodb:")
    return DynamoStore(table), DynamoSlots(table)


def _redis(url: str) -> tuple[TaskStore, Slots]:
    from handler.state.redis_store import RedisSlots, RedisStore  # redis-py only when the store is configured

    return RedisStore(url), RedisSlots(url)


# The one place a scheme chooses a home (config.py checks the spec before it gets here).
_HOMES: dict[str, Callable[[str], tuple[TaskStore, Slots]]] = {"dynamodb": _dynamodb, "redis": _redis,
                                                                "rediss": _redis}


def _home(spec: str) -> tuple[TaskStore, Slots]:
    return _HOMES[spec.partition(":")[0]](spec)
