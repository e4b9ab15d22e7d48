"""The emulated server's tasks and the five operations on them, as pure functions of body and time.

Not locked and not HTTP-aware: the core calls it under its lock with a checked, parsed body.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from timpush.emulator import envelope as env
from timpush.emulator.content import check_content, with_msg_random
from timpush.emulator.listing import parse_list_query, select
from timpush.emulator.settings import EmulatorSettings
from timpush.emulator.tasks import DISPATCHED, DISPATCHING, Task
from timpush.emulator.validation import (
    Body,
    check_schedule,
    invalid,
    parse_time,
    require_task_id,
    require_type,
)

Fields = dict[str, object]
_ID_BASE = (1_000_000_000, 2_000_000_000)  # ten-digit IDs like the docs' 1234567890


class TaskStore:
    """Tasks of every app the emulator serves, keyed by TaskID; IDs rise from a seeded base."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self._settings = settings
        self._rng = random.Random(settings.seed)  # noqa: S311 - IDs and MsgRandom, not cryptography
        seeded = self._rng.randrange(*_ID_BASE)
        self._next_id = settings.first_task_id if settings.first_task_id is not None else seeded
        self._tasks: dict[int, Task] = {}

    def call(self, api: str, sdkappid: int, body: Body, now: float) -> Fields:
        """Run ``api``; the fields to add to an OK envelope, or an ``ApiError``."""
        operations: dict[str, Callable[[int, Body, float], Fields]] = {
            "add_sched_task": self.add,
            "modify_sched_task": self.modify,
            "delete_sched_task": self.delete,
            "get_sched_task": self.get,
            "list_sched_task": self.list_tasks,
        }
        return operations[api](sdkappid, body, now)

    def add(self, sdkappid: int, body: Body, now: float) -> Fields:
        task_type = require_type(body)
        sched_at = parse_time(body.get("SchedAt"), "SchedAt")
        check_schedule(sched_at, now, self._settings, self._settings.add_past_code)
        content = check_content(task_type, body.get("Content"), self._settings.push_tag_codes)
        task = Task(self._next_id, sdkappid, task_type, sched_at, int(now), with_msg_random(content, self._rng))
        self._tasks[task.task_id] = task
        self._next_id += 1
        return {"TaskID": task.task_id}

    def modify(self, sdkappid: int, body: Body, now: float) -> Fields:
        if "SchedAt" not in body and "Content" not in body:
            raise invalid("SchedAt or Content is required")
        sched_at = parse_time(body["SchedAt"], "SchedAt") if "SchedAt" in body else None
        task = self._pending(sdkappid, body, now, "modify")
        if sched_at is not None:
            check_schedule(sched_at, now, self._settings, env.TIME_INVALID)
        content = self._new_content(task, body["Content"]) if "Content" in body else task.content
        # Every check is done: only now touch the task, so a refusal changes nothing.
        task.sched_at = task.sched_at if sched_at is None else sched_at
        task.content = content
        return {"TaskID": task.task_id}

    def delete(self, sdkappid: int, body: Body, now: float) -> Fields:
        task = self._pending(sdkappid, body, now, "delete")
        del self._tasks[task.task_id]
        return {"TaskID": task.task_id}

    def get(self, sdkappid: int, body: Body, now: float) -> Fields:
        task = self._find(sdkappid, require_task_id(body))
        return {"TaskInfo": task.info(now, self._settings.dispatch_seconds)}

    def list_tasks(self, sdkappid: int, body: Body, now: float) -> Fields:
        query = parse_list_query(body, self._settings)
        mine = (task for task in self._tasks.values() if task.sdkappid == sdkappid)
        total, page = select(mine, query, self._settings.list_filter_on)
        return {"Total": total, "Tasks": [task.info(now, self._settings.dispatch_seconds) for task in page]}

    def snapshot(self, now: float) -> list[Fields]:
        """Every task of every app as TaskInfo, by TaskID (for the admin path)."""
        ordered = sorted(self._tasks.values(), key=lambda task: task.task_id)
        return [task.info(now, self._settings.dispatch_seconds) for task in ordered]

    def _find(self, sdkappid: int, task_id: int) -> Task:
        task = self._tasks.get(task_id)
        if task is None or task.sdkappid != sdkappid:
            raise invalid("invalid TaskID")
        return task

    def _pending(self, sdkappid: int, body: Body, now: float, verb: str) -> Task:
        """The task modify or delete addresses, if its Type matches and it has not started dispatching."""
        task_id, task_type = require_task_id(body), require_type(body)
        task = self._find(sdkappid, task_id)
        if task_type != task.type:
            raise invalid("invalid Type: must equal the task's type")
        status = task.status(now, self._settings.dispatch_seconds)
        if status == DISPATCHING:
            raise env.ApiError(env.DISPATCHING, f"{verb} failed: task dispatching")
        if status == DISPATCHED:
            raise env.ApiError(env.DISPATCHED, f"{verb} failed: task dispatched")
        return task

    def _new_content(self, task: Task, content: object) -> dict[str, object]:
        if not isinstance(content, dict):
            raise invalid("invalid Content: must be an object")
        merged = {**task.content, **content} if self._settings.content_mode == "merge" else content
        checked = check_content(task.type, merged, self._settings.push_tag_codes)
        return with_msg_random(checked, self._rng)
