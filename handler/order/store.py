"""What the order asks of a store (DESIGN "Order"): a task's lease and the keys last applied to its fields.

The homes in ``handler.state`` (memory, DynamoDB, Redis) implement ``TaskStore``; the order never imports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from handler.order.key import Stamp, TaskKey


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
