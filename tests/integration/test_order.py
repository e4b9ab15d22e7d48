"""A newer change is never undone (DESIGN "Order"): the real handler against the emulator, in one process.

The store here is this process's memory (no IM_STATE_STORE); test_state_dynamodb.py runs the same rules
against DynamoDB (moto server) across processes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler import lambda_handler, runtime
from handler.compat import UTC
from handler.model import format_issued_at
from handler.order.key import Stamp, TaskKey
from tests.support.im import ADMIN, APP, KEY, add_task, dead_letters, get_task, modify_requests
from tests.support.lambda_events import (
    configure,
    failed_ids,
    fifo_record,
    http_event,
    ids_by_digest,
    sent_ms,
    sqs_event,
    sqs_record,
)
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


def test_a_redelivery_of_an_applied_change_is_already_applied(emu: Emulator, caplog: pytest.LogCaptureFixture,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # Given a change that went through, over SQS and over HTTP
    task = add_task(emu)
    first = sqs_record(body(task, SchedAt=NEW))
    assert failed_ids(invoke(sqs_event([first]))) == []
    request = http_event(f"/sched-tasks/{task}", json.dumps({"Type": "All", "Content": {"x": 1}}))
    assert invoke(request)["statusCode"] == 200
    emu.clear_requests()
    capsys.readouterr()
    caplog.set_level(logging.INFO)
    caplog.clear()
    # When SQS delivers the same message again (at least once), and the gateway replays the same request
    again = sqs_record(first["body"], 2, first["messageId"], sent=int(first["attributes"]["SentTimestamp"]))
    assert failed_ids(invoke(sqs_event([again]))) == []
    replay = invoke(request)
    # Then nothing is sent; each ends as a success that names no winner, logged and counted apart
    assert modify_requests(emu) == []
    assert replay["statusCode"] == 200
    assert json.loads(replay["body"]) == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "already applied",
                                          "TaskID": task}
    lines = [r for r in caplog.records if r.getMessage().startswith("modification")]
    assert [r.getMessage() for r in lines] == ["modification already applied"] * 2
    assert [r.outcome for r in lines] == ["succeeded"] * 2  # type: ignore[attr-defined]
    assert not any(hasattr(r, "superseded_by") for r in lines)
    metrics = [name for doc in _emf(capsys.readouterr().out) for name in doc if name.startswith("Modifications")]
    assert sorted(metrics) == ["ModificationsAlreadyApplied"] * 2


def _emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


def _iso(record: dict[str, Any]) -> str:
    from datetime import UTC, datetime

    from handler.model import format_issued_at

    return format_issued_at(datetime.fromtimestamp(int(record["attributes"]["SentTimestamp"]) / 1000, UTC))


def test_a_message_of_many_modifications_continues_where_the_last_delivery_stopped(
        emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IM_RATE_LIMIT", "0")  # no pacing: what is asserted is what the server saw, not when
    runtime.reset()
    # Given one message carrying 30 modifications of 30 tasks, and a server that fails the first request (retryable,
    # one attempt each) and answers the rest
    tasks = [add_task(emu) for _ in range(30)]
    emu.clear_requests()
    message = sqs_record(json.dumps([{"TaskID": t, "Type": "All", "SchedAt": NEW} for t in tasks]))
    emu.add_faults([Fault(kind="error", code=90105, count=1, api="modify")])
    # When SQS delivers it again after each retryable end
    retried = []
    for delivery in (1, 2, 3):
        again = sqs_record(message["body"], delivery, message["messageId"],
                           sent=int(message["attributes"]["SentTimestamp"]))
        retried.append(failed_ids(invoke(sqs_event([again]))) == [message["messageId"]])
    # Then the first delivery came back once, and the second sent only the one the first could not apply: every
    # task was modified once, and the server saw nothing sent again that an earlier delivery had applied
    assert retried == [True, False, False]
    sent = [(r["body"]["TaskID"], r["code"]) for r in modify_requests(emu)]  # type: ignore[index]
    assert len(sent) == 31
    assert sorted(t for t, code in sent if code == 0) == sorted(tasks)
    assert sent[0] == (tasks[0], 90105) and sent[30] == (tasks[0], 0)  # the second delivery, where the first stopped


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


# --- the edges: equal send times, the queue's own order, an IssuedAt against position (issue 18) ---------


def test_a_fifo_batch_stamped_alike_is_applied_in_the_queues_order(emu: Emulator) -> None:
    # Given two messages of one group sent in one SendMessageBatch: SQS stamps them with one SentTimestamp,
    # and their ids order them the other way round, so only the SequenceNumber says which is newer
    task, sent = add_task(emu), sent_ms()
    low_id, high_id = ids_by_digest()
    first = fifo_record(body(task, SchedAt=OLD), sent, 18_889_000_000_000_000_001, message_id=high_id)
    second = fifo_record(body(task, SchedAt=NEW), sent, 18_889_000_000_000_000_002, message_id=low_id)
    emu.clear_requests()
    # When they come in one batch, in the group's order
    assert failed_ids(invoke(sqs_event([first, second]))) == []
    # Then both are applied in that order and the task keeps the second
    assert [r["body"]["SchedAt"] for r in modify_requests(emu)] == [OLD, NEW]  # type: ignore[index]
    assert get_task(emu, task)["SchedAt"] == NEW
    # and the first, delivered again later, is superseded (not sent)
    again = fifo_record(first["body"], sent, 18_889_000_000_000_000_001, message_id=high_id)
    assert failed_ids(invoke(sqs_event([again]))) == []
    assert len(modify_requests(emu)) == 2 and get_task(emu, task)["SchedAt"] == NEW


def test_a_standard_batch_stamped_alike_ends_the_same_in_either_order(emu: Emulator) -> None:
    # Given two different messages for one task with one SentTimestamp: the change's id breaks the tie
    sent = sent_ms()
    low_id, high_id = ids_by_digest()
    ends = []
    for order in ((low_id, high_id), (high_id, low_id)):
        task = add_task(emu)
        value = {low_id: OLD, high_id: NEW}
        records = [sqs_record(body(task, SchedAt=value[i]), message_id=i, sent=sent) for i in order]
        # When the queue delivers them in one order or the other
        assert failed_ids(invoke(sqs_event(records))) == []
        ends.append(get_task(emu, task)["SchedAt"])
    # Then both tasks end with the same change: the one whose key is greater
    assert ends == [NEW, NEW]


def test_an_explicit_issued_at_beats_position_in_a_payload(emu: Emulator) -> None:
    task = add_task(emu)
    now = datetime.now(UTC)
    newer, older = (format_issued_at(now - timedelta(seconds=s)) for s in (5, 7))
    emu.clear_requests()
    # the producer says the first entry is newer: it is sent, the second is superseded by it
    result = invoke([{"TaskID": task, "Type": "All", "SchedAt": NEW, "IssuedAt": newer},
                     {"TaskID": task, "Type": "All", "SchedAt": OLD, "IssuedAt": older}])
    assert [r["outcome"] for r in result["results"]] == ["succeeded", "superseded"]
    assert "later entry" not in result["results"][1]["ErrorInfo"]  # the store said so, by the key
    assert [r["body"]["SchedAt"] for r in modify_requests(emu)] == [NEW]  # type: ignore[index]
    assert get_task(emu, task)["SchedAt"] == NEW
    # the same IssuedAt twice: position decides, the later entry wins and the first is never sent
    emu.clear_requests()
    later = format_issued_at(now - timedelta(seconds=1))
    result = invoke([{"TaskID": task, "Type": "All", "SchedAt": "2031-03-03 03:03:03", "IssuedAt": later},
                     {"TaskID": task, "Type": "All", "SchedAt": "2031-04-04 04:04:04", "IssuedAt": later}])
    assert [r["outcome"] for r in result["results"]] == ["superseded", "succeeded"]
    assert [r["body"]["SchedAt"] for r in modify_requests(emu)] == ["2031-04-04 04:04:04"]  # type: ignore[index]


def test_a_dead_letter_keeps_the_whole_key_and_its_redrive_keeps_its_place(emu: Emulator, tmp_path: Path) -> None:
    # Given two changes of one FIFO batch (one SentTimestamp): the first fails on its last delivery
    task, sent = add_task(emu), sent_ms()
    first = fifo_record(body(task, SchedAt=OLD), sent, 41, receive_count=5)
    second = fifo_record(body(task, SchedAt=NEW), sent, 42)
    emu.add_faults([Fault(kind="error", code=90105, count=1, api="modify")])
    assert failed_ids(invoke(sqs_event([first, second]))) == []
    [letter] = dead_letters(tmp_path / "dead.jsonl")
    assert (letter["issued_by"], letter["issued_seq"]) == (f"sqs:{first['messageId']}", "41")
    assert get_task(emu, task)["SchedAt"] == NEW
    # When it is redriven through the work queue: sent later, a new id and a SequenceNumber above the second's
    from handler.deadletter.sqs import work_message

    redriven = fifo_record(letter["raw"], sent_ms(), 99)
    redriven["messageAttributes"] = {name: {"stringValue": str(value), "dataType": "String"}
                                     for name, value in work_message(letter).attributes.items()}
    emu.clear_requests()
    assert failed_ids(invoke(sqs_event([redriven]))) == []
    # Then it keeps its place behind the second (its own key travelled): superseded, not sent
    assert modify_requests(emu) == [] and get_task(emu, task)["SchedAt"] == NEW


# --- the order key as a property of the whole handler ------------------------------------------------------

_BASE_MS = 1_780_000_000_000  # a fixed past time: SentTimestamp and IssuedAt both pick from a few ms after it
_message = st.tuples(st.sampled_from(["m-1", "m-2", "m-3", "m-4"]), st.integers(0, 2),  # id, SentTimestamp
                     st.lists(st.tuples(st.sampled_from([None, 0, 1, 2]),  # an entry's own IssuedAt, if any
                                        st.sampled_from([("SchedAt",), ("Content",), ("SchedAt", "Content")])),
                              min_size=1, max_size=3))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(_message, min_size=1, max_size=4, unique_by=lambda m: m[0]), data=st.data())
def test_through_the_handler_each_field_ends_with_the_change_of_the_largest_key(
        emu: Emulator, messages: list[Any], data: st.DataObject) -> None:
    # Given a few SQS messages for one task, with ties in their send and issue times and several entries each
    task = add_task(emu)
    records, wanted = [], {}
    for message_id, sent, entries in messages:
        payload = []
        for pos, (issued, fields) in enumerate(entries):
            ms = _BASE_MS + (sent if issued is None else issued)
            key = Stamp(ms, f"sqs:{message_id}", 0, pos).key
            value = {"SchedAt": f"2031-01-01 00:{len(records):02d}:{pos:02d}", "Title": f"{message_id}/{pos}"}
            entry: dict[str, Any] = {"TaskID": task, "Type": "All"}
            if "SchedAt" in fields:
                entry["SchedAt"] = value["SchedAt"]
                wanted["SchedAt"] = max(wanted.get("SchedAt", ("", "")), (key, value["SchedAt"]))
            if "Content" in fields:
                entry["Content"] = {"OfflinePushInfo": {"Title": value["Title"], "Desc": "d"}}
                wanted["Title"] = max(wanted.get("Title", ("", "")), (key, value["Title"]))
            if issued is not None:
                entry["IssuedAt"] = format_issued_at(datetime.fromtimestamp(ms / 1000, UTC))
            payload.append(entry)
        records.append((message_id, json.dumps(payload), _BASE_MS + sent))
    # When the queue delivers each once or more, in any order, one message per invocation
    again = data.draw(st.lists(st.sampled_from(records), max_size=4))
    for message_id, text, sent in data.draw(st.permutations([*records, *again])):
        assert failed_ids(invoke(sqs_event([sqs_record(text, message_id=message_id, sent=sent)]))) == []
    # Then each field holds the value of the entry with the largest order key
    got = get_task(emu, task)
    assert {name: got[name] for name in wanted} == {name: value for name, (_, value) in wanted.items()}
