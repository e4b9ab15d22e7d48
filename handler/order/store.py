"""What the order asks of a store (DESIGN "Order"): a task's lease and the keys last applied to its fields.

The homes in ``handler.state`` (memory, DynamoDB, Redis) implement ``TaskStore``; the order never imports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple, Protocol

from handler.order.key import Stamp, TaskKey


class TaskState(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    """What the store knows of a task: the stamp of the change last applied to each field."""

    applied: Mapping[str, Stamp] = MappingProxyType({})  # read-only: shared by every empty state


class LeaseTaken(Exception):
    """Another modification of the task holds its lease; ``state`` is the task as the store has it."""

    def __init__(self, state: TaskState, until_ms: int) -> None:
        super().__init__("the task's lease is held by another modification")
        self.state = state
        self.until_ms = until_ms


class StoreUnavailable(Exception):
    """The store could not be reached or refused the call (code -6; nothing is sent unguarded).

    ``store`` names the store as logs may show it (``redis://HOST:PORT/DB``, ``dynamodb:TABLE``: never a
    password), ``cause`` says what went wrong in words (DESIGN "The state store, as people rent it": "connection
    refused", "authentication failed (user or password)", ...), never an exception's class name. ``transient``
    faults (refused, dropped, timed out, read-only replica, loading, busy, throttled, 5xx) are worth retrying
    within the invocation; the others are configuration faults (``StoreMisconfigured``) that wait for a fix.
    """

    transient = True

    def __init__(self, store: str, cause: str) -> None:
        super().__init__(f"{store}: {cause}")
        self.store = store
        self.cause = cause


class StoreMisconfigured(StoreUnavailable):
    """A configuration fault (authentication, permission, no such database, server too old, eviction policy,
    cluster redirection not followed, a missing table, access denied): not retried within the invocation."""

    transient = False


class TaskStore(Protocol):
    name: str
    keeps_history: bool  # a shared home keeps each task's history; this process's memory only when asked (the demo)

    def lease(self, task: TaskKey, owner: str, until_ms: int, now_ms: int) -> TaskState:
        """Take the task's lease (free, expired, or already ``owner``'s) and return its state, or raise LeaseTaken."""

    def record(self, task: TaskKey, owner: str, applied: Mapping[str, Stamp], expires_at: int,
               entry: str | None = None) -> None:
        """After a success: raise the fields' stamps (never lower them) and release the lease; in the same
        write, append ``entry`` to the task's history (``handler.order.history``), keeping the newest CAP."""

    def release(self, task: TaskKey, owner: str, entry: str | None = None) -> None:
        """Give the lease back without recording an order (a failure records none); in the same write, append
        ``entry`` to the history (a change superseded under the lease)."""

    def note(self, task: TaskKey, entry: str, expires_at: int) -> None:
        """Append ``entry`` to the task's history in one write of its own (a dead letter, a change superseded
        without the lease); ``expires_at`` only for a task the store keeps nothing of yet."""

    def history(self, task: TaskKey) -> list[str]:
        """The task's history as kept, oldest first (the newest CAP, or a few more a next write trims)."""

    def describe(self) -> list[tuple[str, str]]:
        """What the home stands on, as ``timpush check`` prints it: (what, found) pairs, e.g. ("kind", "Redis 7.0.15,
        standalone"); raises StoreUnavailable (or StoreMisconfigured) when the home cannot keep the order."""
