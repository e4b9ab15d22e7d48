"""The demo's last stop: who moved my push? One task's history (DESIGN "Task history") told from its start.

``begin`` creates a task and changes it three ways before the demo's redrive: an operator's PATCH (applied), a
queue message sent 5 minutes before it and delivered late (superseded by the operator's change), and a direct
invocation while the server fails (dead-lettered, retryable). The demo's ``timpush redrive --to direct`` then
applies that one again. ``end`` prints the history through ``timpush history``'s own code, from the store this
process's handler wrote to: here its memory (the demo runs without ``IM_STATE_STORE``); in a fleet,
``timpush history TASKID`` reads the same from DynamoDB or Redis.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from handler.im import client
from handler.im.usersig import generate
from handler.order.key import TaskKey
from handler.order.store import TaskStore
from timpush.context import LocalContext
from timpush.emulator import Emulator, Fault

Say = Callable[[str], None]
Event = dict[str, Any]


@dataclass(frozen=True)
class Told:
    store: TaskStore
    task: TaskKey


def begin(emu: Emulator, say: Say, late_events: Callable[[int], tuple[Event, Event]]) -> Told:
    """Three changes of a new task, through HTTP, SQS and a direct invocation; the last one dead-lettered.
    ``late_events(task)``: the demo's operator's PATCH and its queue message sent 5 minutes before."""
    from handler import lambda_handler, runtime

    # Without IM_STATE_STORE there is no history (DESIGN); the demo keeps one in its own process to show it
    runtime.runtime().modifier.order.store.keeps_history = True
    task = _create(emu)
    patch, late = late_events(task)
    direct = {"TaskID": task, "Type": "All", "Content": {"OfflinePushInfo": {"Title": "Launch day: doors at eleven",
                                                                             "Desc": "One hour later"}}}
    with contextlib.redirect_stdout(io.StringIO()):  # EMF metric lines
        lambda_handler(patch, LocalContext(timeout_seconds=30))
        lambda_handler(late, LocalContext(timeout_seconds=30))
        emu.add_faults([Fault(kind="internal_error", count=8, api="modify")])
        try:
            lambda_handler(direct, LocalContext(timeout_seconds=30))
        finally:
            emu.clear_faults()
    say(f"\nTask {task}: an operator's PATCH, a queue message sent 5 minutes earlier and delivered late, and a "
        "direct invocation while the server fails (dead-lettered, retryable): the redrive below brings it back.")
    return Told(runtime.runtime().modifier.order.store, TaskKey(emu.settings.sdkappid, task))


def _create(emu: Emulator) -> int:
    app, admin = emu.settings.sdkappid, emu.settings.admins[0]
    creds = client.Credentials(app, admin, generate(app, emu.settings.key, admin, 3600))
    body = {"Sdkappid": app, "Type": "All", "SchedAt": "2031-06-30 10:00:00",
            "Content": {"From_Account": admin, "OfflinePushInfo": {"Title": "Launch day", "Desc": "Doors at ten"}}}
    result = client.call(emu.url, "add_sched_task", body, creds)
    return int((result.body or {})["TaskID"])


def end(told: Told, say: Say) -> None:
    """The task's history, as ``timpush history`` prints it."""
    from timpush.history import show

    say(f"\nWho moved my push? The history of task {told.task.task_id} (`timpush history {told.task.task_id}` "
        "reads it from IM_STATE_STORE; the demo's is this process's memory):")
    show(told.store, told.task)
