"""A newer change is never undone (DESIGN "Order"): the real handler against the emulator, in one process.

The store here is this process's memory (no IM_STATE_STORE); test_state_dynamodb.py runs the same rules
against DynamoDB (moto server) across processes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handler import lambda_handler, runtime
from handler.state import TaskKey
from tests.support.im import ADMIN, APP, KEY, add_task, dead_letters, get_task, modify_requests
from tests.support.lambda_events import configure, failed_ids, http_event, sent_ms, sqs_event, sqs_record
from timpush.context import LocalContext
from timpush.emulator import Emulator, EmulatorSettings, Fault

pytestmark = pytest.mark.integration

OLD, NEW = "2031-01-01 09:00:00", "2031-02-02 10:00:00"


@pytest.fixture
def emu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=5, rate_limit=0)) as running:
        configure(monkeypatch, {"IM_ENDPOINT": running.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY,
                                "IM_ADMIN": ADMIN, "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}",
                                "IM_MAX_ATTEMPTS": "1"})
        yield running
    runtime.reset()


def invoke(event: Any, timeout: float = 30.0) -> Any:
    return lambda_handler(event, LocalContext(timeout_seconds=timeout))


def body(task: int, **fields: Any) -> str:
    return json.dumps({"TaskID": task, "Type": "All", **fields})


def test_a_redelivered_older_change_does_not_undo_a_newer_one(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    # Given an older change (SchedAt OLD) that fails once on the work queue
    task = add_task(emu)
    old = sqs_record(body(task, SchedAt=OLD))
    emu.add_faults([Fault(kind="error", code=90105, count=1, api="modify")])
    assert failed_ids(invoke(sqs_event([old]))) == [old["messageId"]]
    # and meanwhile a newer one (SchedAt NEW) that succeeds
    new = sqs_record(body(task, SchedAt=NEW))
    assert failed_ids(invoke(sqs_event([new]))) == []
    # When the older one comes back (second delivery)
    emu.clear_requests()
    again = sqs_record(old["body"], 2, old["messageId"], sent=int(old["attributes"]["SentTimestamp"]))
    caplog.set_level(logging.INFO)
    assert failed_ids(invoke(sqs_event([again]))) == []
    # Then it is finished without being sent, the task keeps NEW, and the log names the change that won
    assert modify_requests(emu) == []
    assert get_task(emu, task)["SchedAt"] == NEW
    [line] = [r for r in caplog.records if r.getMessage() == "modification superseded by a newer change"]
    assert line.error_code == -7 and line.outcome == "superseded"  # type: ignore[attr-defined]
    assert line.superseded_by == {"SchedAt": f"a change issued {_iso(new)} by sqs:{new['messageId']}"}  # type: ignore[attr-defined]


def _iso(record: dict[str, Any]) -> str:
    from datetime import UTC, datetime

    from handler.model import format_issued_at

    return format_issued_at(datetime.fromtimestamp(int(record["attributes"]["SentTimestamp"]) / 1000, UTC))


def test_a_message_of_many_modifications_continues_where_the_last_delivery_stopped(
        emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given one message carrying 30 modifications of 30 tasks, at 5 requests/second with 3 s of work per delivery
    tasks = [add_task(emu) for _ in range(30)]
    emu.clear_requests()
    monkeypatch.setenv("IM_RATE_LIMIT", "5")
    runtime.reset()
    message = sqs_record(json.dumps([{"TaskID": t, "Type": "All", "SchedAt": NEW} for t in tasks]))
    # When SQS delivers it again after each retryable end
    deliveries = 0
    while deliveries < 6:
        deliveries += 1
        again = sqs_record(message["body"], deliveries, message["messageId"],
                           sent=int(message["attributes"]["SentTimestamp"]))
        if not failed_ids(invoke(sqs_event([again]), timeout=5.0)):
            break
    # Then every task was modified exactly once: no delivery sent again what an earlier one applied
    sent = [r["body"]["TaskID"] for r in modify_requests(emu)]  # type: ignore[index]
    assert sorted(sent) == sorted(tasks)
    assert 2 <= deliveries <= 4  # about 15 a delivery; without the order it never finished


def test_a_partly_superseded_change_sends_its_newer_field_only(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    task = add_task(emu)
    older, newer = sent_ms(), sent_ms()
    # Content was changed by the newer message first
    content = {"OfflinePushInfo": {"Title": "new", "Desc": "new"}}
    assert failed_ids(invoke(sqs_event([sqs_record(body(task, Content=content), sent=newer)]))) == []
    emu.clear_requests()
    caplog.set_level(logging.INFO)
    # the older one sets SchedAt (never set since) and an older Content
    stale = {"OfflinePushInfo": {"Title": "old", "Desc": "old"}}
    assert failed_ids(invoke(sqs_event([sqs_record(body(task, SchedAt=NEW, Content=stale), sent=older)]))) == []
    [request] = modify_requests(emu)
    assert request["body"]["SchedAt"] == NEW and "Content" not in request["body"]  # type: ignore[index]
    assert get_task(emu, task)["Title"] == "new"
    line = [r for r in caplog.records if r.getMessage().startswith("modification succeeded")][-1]
    assert set(line.superseded_by) == {"Content"}  # type: ignore[attr-defined]
    assert "older fields left out" in line.getMessage()


def test_within_one_payload_a_later_entry_for_the_same_task_wins(emu: Emulator) -> None:
    task = add_task(emu)
    result = invoke([{"TaskID": task, "Type": "All", "SchedAt": OLD},
                     {"TaskID": str(task), "Type": "All", "SchedAt": NEW}])
    assert [r["outcome"] for r in result["results"]] == ["superseded", "succeeded"]
    assert result["results"][0]["ErrorCode"] == -7 and "later entry" in result["results"][0]["ErrorInfo"]
    assert (result["succeeded"], result["superseded"], result["dead_lettered"]) == (1, 1, 0)
    assert [r["body"]["SchedAt"] for r in modify_requests(emu)] == [NEW]  # type: ignore[index]
    assert get_task(emu, task)["SchedAt"] == NEW


def test_http_answers_409_for_an_older_request_and_429_while_the_task_is_busy(emu: Emulator) -> None:
    task = add_task(emu)
    path = f"/sched-tasks/{task}"
    early = http_event(path, json.dumps({"Type": "All", "SchedAt": OLD}))
    late = http_event(path, json.dumps({"Type": "All", "SchedAt": NEW}))
    assert invoke(late)["statusCode"] == 200
    answer = invoke(early)  # received earlier, answered later
    assert answer["statusCode"] == 409 and json.loads(answer["body"])["ErrorCode"] == -7
    # another invocation holds the task (its lease in the store): this one waits briefly, then 429
    store = runtime.runtime().modifier.order.store
    store.lease(TaskKey(APP, task), "another-invocation", sent_ms() + 60_000, sent_ms())
    busy = invoke(http_event(path, json.dumps({"Type": "All", "SchedAt": "2031-03-03 03:03:03"})))
    assert busy["statusCode"] == 429 and busy["headers"]["Retry-After"] == "1"
    assert json.loads(busy["body"])["ErrorCode"] == -8
    assert get_task(emu, task)["SchedAt"] == NEW


def test_a_busy_task_leaves_the_queue_message_for_later_and_dead_letters_it_on_the_last_delivery(
        emu: Emulator, tmp_path: Path) -> None:
    task = add_task(emu)
    runtime.runtime().modifier.order.store.lease(TaskKey(APP, task), "another", sent_ms() + 60_000, sent_ms())
    first = sqs_record(body(task, SchedAt=NEW))
    assert failed_ids(invoke(sqs_event([first]))) == [first["messageId"]]
    last = sqs_record(first["body"], 5, first["messageId"], sent=int(first["attributes"]["SentTimestamp"]))
    assert failed_ids(invoke(sqs_event([last]))) == []
    [letter] = dead_letters(tmp_path / "dead.jsonl")
    assert (letter["error"]["code"], letter["error"]["class"]) == (-8, "retryable")
    assert letter["issued_at"] == _iso(first)
    assert modify_requests(emu) == []


def test_a_redriven_message_is_ordered_by_its_issued_at_attribute(emu: Emulator) -> None:
    task = add_task(emu)
    assert invoke({"TaskID": task, "Type": "All", "SchedAt": NEW})["succeeded"] == 1
    emu.clear_requests()
    # the maintenance job sends back an older dead letter: SQS stamps it now, IssuedAt says when it was made
    redriven = sqs_record(body(task, SchedAt=OLD))
    redriven["messageAttributes"] = {"IssuedAt": {"stringValue": "2026-01-01T00:00:00.000Z", "dataType": "String"},
                                     "Redrives": {"stringValue": "1", "dataType": "Number"}}
    assert failed_ids(invoke(sqs_event([redriven]))) == []
    assert modify_requests(emu) == [] and get_task(emu, task)["SchedAt"] == NEW


def test_a_lone_surrogate_is_invalid_input_on_every_trigger(emu: Emulator, tmp_path: Path) -> None:
    task = add_task(emu)
    text = '{"TaskID": ' + str(task) + ', "Type": "All", "SchedAt": "\\udcff"}'  # the escape, as JSON text
    # direct
    result = invoke(json.loads(text))
    assert result["results"][0]["ErrorCode"] == 90104 and "SchedAt" in result["results"][0]["ErrorInfo"]
    # SQS, on its last delivery too: dead-lettered with its raw body, not left without a code
    message = sqs_record(text, 5)
    assert failed_ids(invoke(sqs_event([message]))) == []
    # HTTP
    answer = invoke(http_event(f"/sched-tasks/{task}", '{"Type": "All", "SchedAt": "\\udcff"}'))
    assert answer["statusCode"] == 400 and json.loads(answer["body"])["errors"][0]["field"] == "SchedAt"
    letters = dead_letters(tmp_path / "dead.jsonl")
    assert [letter["error"]["code"] for letter in letters] == [90104, 90104]
    assert letters[1]["raw"] == text and letters[1]["request"]["SchedAt"] == "\udcff"
    assert modify_requests(emu) == []


def test_a_field_a_later_entry_sets_is_left_out_and_said_so(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    task = add_task(emu)
    caplog.set_level(logging.INFO)
    content = {"OfflinePushInfo": {"Title": "first", "Desc": "d"}}
    result = invoke([{"TaskID": task, "Type": "All", "SchedAt": OLD, "Content": content},
                     {"TaskID": task, "Type": "All", "SchedAt": NEW}])
    assert [r["outcome"] for r in result["results"]] == ["succeeded", "succeeded"]
    first, second = (r["body"] for r in modify_requests(emu))  # type: ignore[index]
    assert "SchedAt" not in first and first["Content"] == content and second["SchedAt"] == NEW
    line = [r for r in caplog.records if r.getMessage().startswith("modification succeeded")][0]
    assert line.superseded_by == {"SchedAt": "a later entry of the same payload"}  # type: ignore[attr-defined]
