"""Helpers for tests that run the real handler against the emulator over loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from handler.im import client
from handler.im.usersig import generate
from timpush.emulator import Emulator

APP = 1400000001
KEY = "tp-test-key-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"  # distinctive, so a leak scan can find it
ADMIN = "administrator"
FUTURE = "2031-06-15 14:00:00"


def add_task(emu: Emulator, task_type: str = "All", sched_at: str = FUTURE, *, app: int = APP, key: str = KEY,
             admin: str = ADMIN, **content: Any) -> int:
    """Create a task on the emulator through add_sched_task, as a user of the API would (app ``app``)."""
    body = {"Sdkappid": app, "Type": task_type, "SchedAt": sched_at,
            "Content": {"From_Account": admin, "OfflinePushInfo": {"Title": "t", "Desc": "d"}, **content}}
    if task_type == "User":
        body["Content"].setdefault("To_Account", ["alice"])
    if task_type == "Tag":
        body["Content"].setdefault("Condition", {"TagsOr": ["vip"]})
    result = client.call(emu.url, "add_sched_task", body, client.Credentials(app, admin, generate(app, key, admin)))
    assert result.ok, result
    assert result.body is not None
    return int(result.body["TaskID"])


def get_task(emu: Emulator, task_id: int) -> dict[str, Any]:
    creds = client.Credentials(APP, ADMIN, generate(APP, KEY, ADMIN))
    result = client.call(emu.url, "get_sched_task", {"Sdkappid": APP, "TaskID": task_id}, creds)
    assert result.ok, result
    assert result.body is not None
    info: dict[str, Any] = result.body["TaskInfo"]
    return info


def modify_requests(emu: Emulator) -> list[dict[str, Any]]:
    return [r for r in emu.requests() if str(r.get("api", "")).endswith("modify_sched_task")]


def dead_letters(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    # JSON Lines end at "\n" only: str.splitlines() would also split at U+0085 or U+2028 inside a value
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
