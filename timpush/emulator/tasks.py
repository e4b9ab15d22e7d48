"""A stored task and its status, which follows from the clock alone (API.md §1.8).

``pending`` until SchedAt, ``dispatching`` for ``dispatch_seconds``, then ``dispatched``. Deriving
the status instead of storing it means advancing the clock is all it takes to move a task on.
"""

from __future__ import annotations

from dataclasses import dataclass

from timpush.emulator.validation import format_time

PENDING, DISPATCHING, DISPATCHED = "pending", "dispatching", "dispatched"


@dataclass
class Task:
    task_id: int
    sdkappid: int
    type: str
    sched_at: int
    create_at: int
    content: dict[str, object]

    def status(self, now: float, dispatch_seconds: float) -> str:
        if now < self.sched_at:
            return PENDING
        if now < self.sched_at + dispatch_seconds:
            return DISPATCHING
        return DISPATCHED

    def info(self, now: float, dispatch_seconds: float) -> dict[str, object]:
        """The TaskInfo object of get and list (API.md §1.6)."""
        status = self.status(now, dispatch_seconds)
        push_info = self.content.get("OfflinePushInfo")
        push_info = push_info if isinstance(push_info, dict) else {}
        return {
            "TaskID": self.task_id,
            "Sdkappid": self.sdkappid,
            "CreateAt": format_time(self.create_at),
            "Type": self.type,
            "SchedAt": format_time(self.sched_at),
            "Content": self.content,
            "Title": push_info.get("Title", ""),
            "Desc": push_info.get("Desc", ""),
            "Status": status,
            "DispatchSuccess": 1 if status == DISPATCHED else 0,
            "DispatchErr": "",
            "PushTaskID": self._push_task_id() if status == DISPATCHED else "",
        }

    def _push_task_id(self) -> str:
        # Shaped like the TaskId of the push the task wraps: batch_… for User, push_… for All/Tag.
        prefix = "batch" if self.type == "User" else "push"
        return f"{prefix}_{self.sched_at:08x}_{self.task_id}"
