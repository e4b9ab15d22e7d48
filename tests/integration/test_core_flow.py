"""A modification travels from a direct payload through the real handler to the emulator, over sockets."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from pathlib import Path

import pytest

from handler import lambda_handler
from handler.apps import registry_for
from handler.compat import UTC
from handler.config import settings
from handler.im.ratelimit import RateLimiter
from handler.model import split_payload
from handler.order.key import Issue
from handler.order.task import TaskOrder
from handler.service import Modifier
from handler.state.memory import MemoryStore
from tests.support.im import ADMIN, APP, KEY, add_task, dead_letters, get_task, modify_requests
from timpush.context import LocalContext
from timpush.emulator import Emulator, EmulatorSettings, Fault
from timpush.emulator.clock import Clock as EmulatorClock


def invoke(event: object, timeout: float = 60.0) -> dict[str, object]:
    result = lambda_handler(event, LocalContext(timeout_seconds=timeout))
    assert isinstance(result, dict)
    return result


def test_good_modifications_change_the_tasks(handler_env: Emulator, dead_letter_file: Path) -> None:
    # Given three tasks of each type on the server
    all_id = add_task(handler_env, "All")
    tag_id = add_task(handler_env, "Tag")
    user_id = add_task(handler_env, "User")
    # When one payload modifies all three, with an ISO time carrying an offset
    payload = {"modifications": [
        {"TaskID": all_id, "Type": "All", "SchedAt": "2031-07-01T17:30:00+08:00"},
        {"TaskID": str(tag_id), "Type": "Tag", "Content": {"Condition": {"TagsAnd": ["gold", "paid"]}}},
        {"TaskID": user_id, "Type": "User", "Content": {"To_Account": ["carol", "dave"],
                                                         "OfflinePushInfo": {"Title": "New", "Desc": "Text"}}},
    ]}
    result = invoke(payload)
    # Then all succeeded, the server holds the changes, and nothing was dead-lettered
    assert result["succeeded"] == 3 and result["dead_lettered"] == 0
    assert get_task(handler_env, all_id)["SchedAt"] == "2031-07-01 09:30:00"
    assert get_task(handler_env, tag_id)["Content"]["Condition"] == {"TagsAnd": ["gold", "paid"]}
    user = get_task(handler_env, user_id)
    assert user["Content"]["To_Account"] == ["carol", "dave"] and user["Title"] == "New"
    assert dead_letters(dead_letter_file) == []


def test_bad_input_never_reaches_the_api(handler_env: Emulator, dead_letter_file: Path) -> None:
    task = add_task(handler_env, "All")
    bad = [
        {"TaskID": task, "Type": "All", "SchedAT": "2031-01-01 00:00:00"},
        {"TaskID": task, "Type": "All", "SchedAt": "2020-01-01 00:00:00"},
        {"TaskID": -4, "Type": "All", "SchedAt": "2031-01-01 00:00:00"},
        {"TaskID": task, "Type": "All", "Content": {"To_Account": ["x"]}},
    ]
    result = invoke(bad)
    assert result["dead_lettered"] == 4
    assert modify_requests(handler_env) == []
    letters = dead_letters(dead_letter_file)
    assert [(d["error"]["code"], d["error"]["origin"]) for d in letters] == [
        (90104, "local"), (90110, "local"), (90104, "local"), (90104, "local")]
    for letter, field in zip(letters, ["SchedAT", "SchedAt", "TaskID", "Content.To_Account"], strict=True):
        assert field in letter["error"]["info"]
    assert json.loads(letters[0]["raw"]) == bad[0]


def test_retry_then_success_within_the_invocation(handler_env: Emulator) -> None:
    task = add_task(handler_env, "All")
    handler_env.add_faults([Fault(kind="internal_error", count=1, api="modify"),
                            Fault(kind="http_502", count=1, api="modify"),
                            Fault(kind="drop", count=1, api="modify")])
    result = invoke({"TaskID": task, "Type": "All", "SchedAt": "2031-02-02 02:02:02"})
    assert result["succeeded"] == 1
    assert len(modify_requests(handler_env)) == 4
    assert get_task(handler_env, task)["SchedAt"] == "2031-02-02 02:02:02"


@pytest.mark.parametrize(
    ("fault", "code", "error_class", "origin"),
    [
        (Fault(kind="internal_error", count=10, api="modify"), 90105, "retryable", "remote"),
        (Fault(kind="http_502", count=10, api="modify"), -3, "retryable", "transport"),
        (Fault(kind="not_envelope", count=10, api="modify"), -4, "retryable", "transport"),
        (Fault(kind="drop", count=10, api="modify"), -1, "retryable", "transport"),
        (Fault(kind="error", code=70009, count=10, api="modify"), 70009, "auth", "remote"),
        (Fault(kind="error", code=123456, count=10, api="modify"), 123456, "unknown", "remote"),
    ],
    ids=["internal", "http502", "not-envelope", "dropped", "auth", "unknown"],
)
def test_each_failure_class_is_dead_lettered_with_code(
    handler_env: Emulator, dead_letter_file: Path, fault: Fault, code: int, error_class: str, origin: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("handler.im.retry.BACKOFF_BASE", 0.01)
    task = add_task(handler_env, "All")
    handler_env.add_faults([fault])
    result = invoke({"TaskID": task, "Type": "All", "SchedAt": "2031-03-03 03:03:03"})
    assert result["dead_lettered"] == 1
    [letter] = dead_letters(dead_letter_file)
    assert (letter["error"]["code"], letter["error"]["class"], letter["error"]["origin"]) == (code, error_class, origin)
    expected_attempts = 4 if error_class == "retryable" else 2 if error_class == "auth" else 1
    assert letter["attempts"] == expected_attempts
    assert len(modify_requests(handler_env)) == expected_attempts


def test_dispatched_task_is_too_late(handler_env: Emulator, dead_letter_file: Path) -> None:
    soon = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 5))
    task = add_task(handler_env, "All", sched_at=soon)
    handler_env.advance(3600)
    result = invoke({"TaskID": task, "Type": "All", "Content": {"OfflinePushInfo": {"Title": "late"}}})
    assert result["results"] == [{"TaskID": task, "ErrorCode": 90106, "ErrorInfo": "modify failed: task dispatched",
                                  "outcome": "dead_lettered"}]
    [letter] = dead_letters(dead_letter_file)
    assert letter["error"]["class"] == "too_late" and letter["request"]["TaskID"] == task


def test_expired_usersig_is_renewed_and_retried_once(handler_env: Emulator) -> None:
    task = add_task(handler_env, "All")
    handler_env.add_faults([Fault(kind="error", code=70001, count=1, api="modify")])
    result = invoke({"TaskID": task, "Type": "All", "SchedAt": "2031-04-04 04:04:04"})
    assert result["succeeded"] == 1
    assert len(modify_requests(handler_env)) == 2


class VirtualTime:
    """One clock for the client's pacing and the emulator's arrivals: it moves only when the client sleeps, so the
    emulator stamps each request with the send slot the limiter gave it (an HTTP call takes no virtual time)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.wall0 = time.time()

    def mono(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.wall0 + self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


def test_pacing_keeps_every_window_within_five(handler_env: Emulator) -> None:
    vt = VirtualTime()
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=3, rate_limit=5),
                  clock=EmulatorClock(wall=vt.wall, mono=vt.mono)) as emu:
        tasks = [add_task(emu, "All") for _ in range(3)]
        emu.clear_requests()
        # the modifier with this process's pacing at 5/s, on the virtual clock
        config = settings()._replace(endpoint=emu.url)
        apps = registry_for(config, limiter_for=lambda _app: RateLimiter(5, clock=vt.mono, sleep=vt.sleep))
        modifier = Modifier(config, apps, sleep=vt.sleep, clock=vt.mono,
                            order=TaskOrder(MemoryStore(), clock=vt.wall, monotonic=vt.mono, sleep=vt.sleep))
        # four payloads of three tasks each: within one payload a later entry for a task would supersede
        for r in range(4):
            payload = [{"TaskID": tasks[i % 3], "Type": "All", "SchedAt": f"2031-05-05 05:05:{i:02d}"}
                       for i in range(r * 3, r * 3 + 3)]
            outcomes = modifier.apply_all(split_payload(payload), vt.now + 60, Issue(datetime.now(UTC), f"direct:{r}"))
            assert [o.code for o in outcomes] == [0, 0, 0]
        arrivals = sorted(float(r["t"]) - vt.wall0 for r in modify_requests(emu))  # type: ignore[arg-type]
    # Then the server saw twelve requests, at most five in any one-second window, and admitted every one
    assert len(arrivals) == 12
    assert max(sum(1 for u in arrivals if t <= u < t + 1.0) for t in arrivals) == 5
    assert all(r["code"] == 0 for r in modify_requests(emu))
    assert arrivals[-1] - arrivals[0] >= 2.0  # 12 at 5/s: a third window


def test_no_secret_in_any_output(handler_env: Emulator, dead_letter_file: Path, capsys: pytest.CaptureFixture[str],
                                 caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("handler.im.retry.BACKOFF_BASE", 0.01)
    caplog.set_level(logging.DEBUG)
    task = add_task(handler_env, "All")
    handler_env.add_faults([Fault(kind="drop", count=10, api="modify")])
    result = invoke([{"TaskID": task, "Type": "All", "SchedAt": "2031-06-06 06:06:06"}])
    handler_env.stop()  # and a connection error with the server gone
    result2 = invoke([{"TaskID": task, "Type": "All", "SchedAt": "2031-06-06 06:06:06"}], timeout=10)
    captured = capsys.readouterr()
    haystack = "\n".join([captured.out, captured.err, caplog.text, json.dumps([result, result2]),
                          dead_letter_file.read_text(encoding="utf-8")])
    assert "modification dead_lettered" in haystack  # the scan looked at real output
    assert KEY not in haystack
    assert "usersig=" not in haystack.replace("usersig=<redacted>", "")
    assert "eJ" not in haystack  # every UserSig starts with the zlib header in base64


def test_debug_lines_are_written_at_debug_and_only_then(handler_env: Emulator,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    # Their fields are built only when the line is written (issue 29): the guard must still let them out at DEBUG.
    from handler.observability import logger as handler_logger

    task = add_task(handler_env, "All")
    caplog.set_level(logging.DEBUG)
    invoke({"TaskID": task, "Type": "All", "SchedAt": "2031-03-03 03:03:03"})
    assert not [r for r in caplog.records if r.levelno == logging.DEBUG and r.name == handler_logger.name]
    previous = handler_logger.log_level
    handler_logger.setLevel(logging.DEBUG)
    try:
        invoke({"TaskID": task, "Type": "All", "SchedAt": "2031-03-03 04:04:04"})
    finally:
        handler_logger.setLevel(previous)
    lines = {r.getMessage(): r for r in caplog.records if r.levelno == logging.DEBUG and r.name == handler_logger.name}
    assert {"validated", "sending", "answered"} <= set(lines)
    assert vars(lines["validated"])["sched_at"] == "2031-03-03 04:04:04"
    assert vars(lines["answered"])["error_code"] == 0 and vars(lines["sending"])["task_id"] == task
