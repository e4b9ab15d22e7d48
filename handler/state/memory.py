"""The task store in this process's memory: the same rules as DynamoDB, for one process (laptop, tests).

Bounded: past MAX_TASKS the least recently used task without a lease is forgotten. Forgetting one can
only let an old redelivery through again, which is what a process restart does too. The task history is kept for
this process only (the demo reads it; ``timpush history`` reads a shared home), for the HISTORY_TASKS tasks
written last: at most 200 x 50 entries of at most 2.8 KB (28 MB; some 4 MB with usual entries).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Mapping

from handler.order.history import CAP
from handler.order.key import Stamp, TaskKey
from handler.order.store import LeaseTaken, TaskState

MAX_TASKS = 50_000
HISTORY_TASKS = 200


class _Entry:  # a plain class, not a dataclass: cheaper to build at a cold start (handler.config)
    __slots__ = ("applied", "owner", "until_ms")

    def __init__(self) -> None:
        self.applied: dict[str, Stamp] = {}
        self.owner: str | None = None
        self.until_ms = 0


class MemoryStore:
    name = "memory"

    def __init__(self, max_tasks: int = MAX_TASKS, keeps_history: bool = False) -> None:
        # DESIGN "Task history": without a store there is no history; the demo turns it on for its own process
        self.keeps_history = keeps_history
        self._tasks: OrderedDict[str, _Entry] = OrderedDict()
        self._histories: OrderedDict[str, deque[str]] = OrderedDict()
        self._max = max_tasks
        self._lock = threading.Lock()

    def lease(self, task: TaskKey, owner: str, until_ms: int, now_ms: int) -> TaskState:
        with self._lock:
            entry = self._entry(task.pk)
            if entry.owner not in (None, owner) and entry.until_ms >= now_ms:
                raise LeaseTaken(TaskState(dict(entry.applied)), entry.until_ms)
            entry.owner, entry.until_ms = owner, until_ms
            return TaskState(dict(entry.applied))

    def record(self, task: TaskKey, owner: str, applied: Mapping[str, Stamp], expires_at: int,
               entry: str | None = None) -> None:
        with self._lock:
            self._note(task.pk, entry)
            held = self._entry(task.pk)
            for name, stamp in applied.items():  # raised only, never lowered: by the whole order key
                if name not in held.applied or held.applied[name].key < stamp.key:
                    held.applied[name] = stamp
            if held.owner == owner:
                held.owner = None

    def release(self, task: TaskKey, owner: str, entry: str | None = None) -> None:
        with self._lock:
            self._note(task.pk, entry)
            held = self._tasks.get(task.pk)
            if held is not None and held.owner == owner:
                held.owner = None

    def note(self, task: TaskKey, entry: str, expires_at: int) -> None:
        with self._lock:
            self._note(task.pk, entry)

    def history(self, task: TaskKey) -> list[str]:
        with self._lock:
            return list(self._histories.get(task.pk, ()))

    def _note(self, pk: str, entry: str | None) -> None:
        if entry is None:
            return
        kept = self._histories.get(pk)
        if kept is None:
            kept = self._histories[pk] = deque(maxlen=CAP)
            if len(self._histories) > HISTORY_TASKS:
                self._histories.popitem(last=False)
        self._histories.move_to_end(pk)
        kept.append(entry)

    def describe(self) -> list[tuple[str, str]]:
        return [("kind", "this process's memory (no fleet order: IM_STATE_STORE is not set)")]

    def __len__(self) -> int:
        return len(self._tasks)

    def _entry(self, pk: str) -> _Entry:
        entry = self._tasks.get(pk)
        if entry is None:
            entry = self._tasks[pk] = _Entry()
            self._evict()
        self._tasks.move_to_end(pk)
        return entry

    def _evict(self) -> None:
        if len(self._tasks) <= self._max:
            return
        for pk, entry in self._tasks.items():  # oldest first; a leased task is in use and stays
            if entry.owner is None:
                del self._tasks[pk]
                return


class MemorySlots:
    """An app's send slots in this process's memory, as the shared homes keep them (tests, the behaviour suite)."""

    name = "memory"

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._lock = threading.Lock()

    def reserve(self, pk: str, now_ms: int, step_ms: int, reach_ms: int, known_ms: int | None) -> tuple[int, bool]:
        with self._lock:
            slot = max(now_ms, self._next.get(pk, now_ms))
            if slot - now_ms > reach_ms:
                return slot, False
            self._next[pk] = slot + step_ms
            return slot, True

    def hold(self, pk: str, until_ms: int) -> None:
        with self._lock:
            self._next[pk] = max(self._next.get(pk, until_ms), until_ms)
