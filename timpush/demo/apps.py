"""The demo's last part: two IM apps in one deployment (``IM_APPS``), each on its own emulator.

Each app has its own key, admin and domain; a payload names each modification's app in ``Sdkappid``.
The second app's server answers 60007 twice: only that app is paused and retried.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handler.im import client
from handler.im.usersig import generate
from timpush.context import LocalContext
from timpush.emulator import Emulator, EmulatorSettings, Fault

SECOND_APP, SECOND_ADMIN, SECOND_FIRST_TASK = 1400000002, "ops", 2_000_000_001
UNKNOWN_APP = 1400000009


def show(first: Emulator, dead: Path, say: Callable[[str], None]) -> None:
    """Serve ``first``'s app and a second one from one handler; one payload for both and an unknown app."""
    key = secrets.token_hex(16)  # the second app's own throwaway key
    settings = EmulatorSettings(sdkappid=SECOND_APP, key=key, admins=(SECOND_ADMIN,), seed=1,
                                first_task_id=SECOND_FIRST_TASK)
    with Emulator(settings) as second:
        task = _add_task(second, key)
        _configure(first, second, key)
        _introduce(first, second, say)
        _send_both(first, task, say)
        say(f"  app {first.settings.sdkappid}'s server saw {_codes(first)}; app {SECOND_APP}'s saw "
            f"{_codes(second)}: each app paced, signed and retried on its own")
    say(f"  the unknown app's modification is in {dead} like any invalid input")


def _introduce(first: Emulator, second: Emulator, say: Callable[[str], None]) -> None:
    """Name the two apps, and arm the second app's server to refuse twice."""
    say(f"\nTwo IM apps in one deployment (IM_APPS): app {first.settings.sdkappid} on {first.url}, app "
        f"{SECOND_APP} (admin {SECOND_ADMIN}, its own key) on {second.url}")
    say(f"  app {SECOND_APP}'s server will answer 60007 (rate limited) twice")
    second.add_faults([Fault(kind="rate_limit", count=2, api="modify")])
    first.clear_requests()


def _send_both(first: Emulator, task: int, say: Callable[[str], None]) -> None:
    """One direct payload for the first app, the second and an unknown one; each row's outcome."""
    payload = [{"Sdkappid": first.settings.sdkappid, "TaskID": first.settings.first_task_id or 0, "Type": "All",
                "SchedAt": "2031-08-01 09:00:00"},
               {"Sdkappid": SECOND_APP, "TaskID": task, "Type": "All", "SchedAt": "2031-08-01 09:30:00"},
               {"Sdkappid": UNKNOWN_APP, "TaskID": task, "Type": "All", "SchedAt": "2031-08-01 10:00:00"}]
    say(f"  one direct payload: {json.dumps(payload)}")
    for row in _invoke(payload)["results"]:
        info = f" {row['ErrorInfo']}" if row["ErrorInfo"] else ""
        say(f"  TaskID {row['TaskID']}: {row['outcome']} (ErrorCode {row['ErrorCode']}){info}")


def _add_task(emu: Emulator, key: str) -> int:
    creds = client.Credentials(SECOND_APP, SECOND_ADMIN, generate(SECOND_APP, key, SECOND_ADMIN, 3600))
    body = {"Sdkappid": SECOND_APP, "Type": "All", "SchedAt": "2031-06-15 14:00:00",
            "Content": {"From_Account": SECOND_ADMIN, "OfflinePushInfo": {"Title": "Second app", "Desc": "Hi"}}}
    result = client.call(emu.url, "add_sched_task", body, creds)
    return int((result.body or {}).get("TaskID", SECOND_FIRST_TASK))


def _configure(first: Emulator, second: Emulator, key: str) -> None:
    """IM_APPS replaces the single-app variables; the dead letters stay where they were."""
    apps = [{"SDKAppID": first.settings.sdkappid, "Key": first.settings.key, "Endpoint": first.url},
            {"SDKAppID": SECOND_APP, "Key": key, "Admin": SECOND_ADMIN, "Endpoint": second.url}]
    os.environ["IM_APPS"] = json.dumps(apps)
    for name in ("IM_SDKAPPID", "IM_SECRET_KEY", "IM_ENDPOINT", "IM_ADMIN"):
        os.environ.pop(name, None)
    from handler import runtime

    runtime.reset()
    # The rebuilt handler's pacer starts empty, but the first app's server still counts the demo's last
    # second of requests: let that window pass, or its first request may meet a real 60007.
    time.sleep(1.05)


def _invoke(payload: object) -> Any:
    from handler import lambda_handler

    with contextlib.redirect_stdout(io.StringIO()):  # EMF metric lines
        result = lambda_handler(payload, LocalContext(timeout_seconds=30))
    assert isinstance(result, dict)  # noqa: S101  (a direct payload answers with its summary)
    return result


def _codes(emu: Emulator) -> list[object]:
    return [r.get("code") for r in emu.requests() if str(r.get("api", "")).endswith("modify_sched_task")]
