"""The HTTP trigger's status mapping (DESIGN "Entry points"), over the emulator."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from handler import lambda_handler
from tests.support.im import add_task, dead_letters
from timpush.context import LocalContext
from timpush.demo import EVENTS
from timpush.emulator import Emulator, Fault

TEMPLATE = json.loads((EVENTS / "http-api-v2.json").read_text(encoding="utf-8"))


def http_event(path: str, body: Any, method: str = "PATCH") -> dict[str, Any]:
    event = copy.deepcopy(TEMPLATE)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["pathParameters"] = {"taskId": path.rsplit("/", 1)[-1]}
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def call(event: dict[str, Any], timeout: float = 30.0) -> tuple[int, dict[str, str], dict[str, Any]]:
    result = lambda_handler(event, LocalContext(timeout_seconds=timeout))
    return result["statusCode"], result.get("headers", {}), json.loads(result["body"])


@pytest.fixture
def task(handler_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("handler.im.retry.BACKOFF_BASE", 0.01)
    return add_task(handler_env, "All")


MOD = {"Type": "All", "SchedAt": "2031-10-10 10:10:10"}


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault(kind="rate_limit", count=10, api="modify"), 429, 60007),
        (Fault(kind="internal_error", count=10, api="modify"), 502, 90105),
        (Fault(kind="http_502", count=10, api="modify"), 502, -3),
        (Fault(kind="error", code=123456, count=10, api="modify"), 502, 123456),
        (Fault(kind="error", code=90110, count=10, api="modify"), 422, 90110),
        (Fault(kind="error", code=90107, count=10, api="modify"), 409, 90107),
    ],
    ids=["rate-limited", "internal", "http502", "unknown", "time-passed", "dispatching"],
)
def test_upstream_failures_map_to_statuses(handler_env: Emulator, task: int, fault: Fault, status: int,
                                           code: int, dead_letter_file: Path) -> None:
    handler_env.add_faults([fault])
    got_status, headers, body = call(http_event(f"/sched-tasks/{task}", MOD))
    assert (got_status, body["ErrorCode"], body["TaskID"], body["ActionStatus"]) == (status, code, task, "FAIL")
    assert ("Retry-After" in headers) == (status == 429)
    assert dead_letters(dead_letter_file) == []


def test_auth_failure_is_500_without_details(handler_env: Emulator, task: int) -> None:
    handler_env.add_faults([Fault(kind="error", code=70009, count=10, api="modify")])
    status, _, body = call(http_event(f"/sched-tasks/{task}", MOD))
    assert (status, body["ErrorCode"]) == (500, 70009)
    assert "logs" in body["ErrorInfo"] and "signature" not in body["ErrorInfo"]


def test_upstream_timeout_is_504(handler_env: Emulator, task: int) -> None:
    # The invocation has 3 s left, less the margin: a 5 s answer cannot be waited for
    handler_env.add_faults([Fault(kind="slow", delay=5.0, count=1, api="modify")])
    status, _, body = call(http_event(f"/sched-tasks/{task}", MOD), timeout=3.0)
    assert (status, body["ErrorCode"]) == (504, -2)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/sched-tasks/abc", MOD, "taskId"),
        ("/sched-tasks/0", MOD, "taskId"),
        ("/sched-tasks/{task}", "not json", "body"),
        ("/sched-tasks/{task}", [MOD], "body"),
        ("/sched-tasks/{task}", {**MOD, "TaskID": 1}, "TaskID"),
        ("/sched-tasks/{task}", {**MOD, "Tpye": "All"}, "Tpye"),
        ("/sched-tasks/{task}", {"Type": "All"}, "SchedAt"),
    ],
)
def test_bad_requests_are_400_naming_the_field(handler_env: Emulator, task: int, path: str, body: Any,
                                                field: str) -> None:
    status, _, answer = call(http_event(path.format(task=task), body))
    assert status == 400 and answer["ErrorCode"] == 90104
    assert any(field in e["field"] + e["message"] for e in answer["errors"]), answer
    assert handler_env.requests()[-1]["api"] == "add_sched_task"  # nothing was sent


def test_wrong_method_and_route(handler_env: Emulator, task: int) -> None:
    status, headers, _ = call(http_event(f"/sched-tasks/{task}", MOD, method="GET"))
    assert status == 405 and headers["Allow"] == "PATCH"
    status, _, body = call(http_event("/tasks", MOD))
    assert status == 404 and "/sched-tasks/" in body["ErrorInfo"]
