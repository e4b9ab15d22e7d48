"""SCF's API Gateway trigger in process, over the emulator: the AWS HTTP trigger's statuses and body in
SCF's integration-response shape (the 3.10 run of the samples is in test_scf.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from handler import main_handler
from tests.support.im import add_task, dead_letters
from tests.support.scf import sample
from timpush.context import scf_context
from timpush.emulator import Emulator, Fault


def apigw(task_id: str, body: Any, method: str = "PATCH", prefix: str = "") -> dict[str, Any]:
    event = sample("apigw")
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = f"{prefix}/sched-tasks/{task_id}"
    event["pathParameters"] = {"taskId": task_id}
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def call(event: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    result = main_handler(event, scf_context(30))
    assert set(result) == {"isBase64Encoded", "statusCode", "headers", "body"}
    return result["statusCode"], result["headers"], json.loads(result["body"])


@pytest.fixture
def task(handler_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("handler.im.retry.BACKOFF_BASE", 0.01)
    monkeypatch.setenv("TENCENTCLOUD_RUNENV", "SCF")
    return add_task(handler_env, "All")


MOD = {"Type": "All", "SchedAt": "2031-10-10 10:10:10"}


def test_a_prefixed_api_path_routes_by_the_task_id_parameter(task: int) -> None:
    status, _headers, body = call(apigw(str(task), MOD, prefix="/timpush"))
    assert (status, body["ErrorCode"], body["TaskID"]) == (200, 0, task)


def test_rate_limited_is_429_with_retry_after(handler_env: Emulator, task: int) -> None:
    handler_env.add_faults([Fault(kind="rate_limit", count=10, api="modify")])
    status, headers, body = call(apigw(str(task), MOD))
    assert (status, body["ErrorCode"], headers.get("Retry-After")) == (429, 60007, "1")


@pytest.mark.parametrize(("task_id", "body", "method", "status", "field"), [
    ("12ab", MOD, "PATCH", 400, "taskId"),
    ("{task}", "not json", "PATCH", 400, "body"),
    ("{task}", {**MOD, "TaskID": 1}, "PATCH", 400, "TaskID"),
    ("{task}", MOD, "GET", 405, None),
])
def test_bad_requests_are_answered_not_dead_lettered(task: int, task_id: str, body: Any, method: str, status: int,
                                                     field: str | None, dead_letter_file: Any) -> None:
    got, headers, answer = call(apigw(task_id.format(task=task), body, method))
    assert got == status and answer["ActionStatus"] == "FAIL"
    if field:
        assert [e["field"] for e in answer["errors"]] == [field]
    else:
        assert headers.get("Allow") == "PATCH"
    assert dead_letters(dead_letter_file) == []
