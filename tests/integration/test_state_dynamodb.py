"""The fleet's task order in DynamoDB (moto server, serialized): the store's conditional writes, the
order across processes, the lease under a real race, and a store that cannot be reached (-6)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from handler import lambda_handler, runtime
from handler.state import LeaseTaken, Stamp, TaskKey, TaskState
from handler.state import dynamodb as dynamo_store
from handler.state.dynamodb import DynamoStore
from handler.state.order import TaskOrder
from tests.fakes.moto_dynamodb import MotoDynamo, moto_dynamodb
from tests.support.im import ADMIN, APP, KEY, add_task, dead_letters, get_task, modify_requests
from tests.support.lambda_events import configure, failed_ids, http_event, ids_by_digest, sqs_event, sqs_record
from tests.support.order_history import Change, Delivery, expected, histories, replay
from timpush.context import LocalContext
from timpush.emulator import Emulator, EmulatorSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TASK = TaskKey(APP, 99)
OLD, NEW = "2031-01-01 09:00:00", "2031-02-02 10:00:00"


@pytest.fixture(scope="module")
def dynamo() -> Iterator[MotoDynamo]:
    with moto_dynamodb() as running:
        yield running


@pytest.fixture
def table(dynamo: MotoDynamo, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoDynamo]:
    dynamo.reset()
    for name, value in dynamo.env.items():
        monkeypatch.setenv(name, value)
    dynamo_store.forget_client()
    yield dynamo
    dynamo_store.forget_client()


def test_the_store_takes_the_lease_and_returns_the_item_in_one_call(table: MotoDynamo) -> None:
    store = DynamoStore(table.table)
    assert store.lease(TASK, "a", 2_000_000_000_000, 1_000) == TaskState({})
    with pytest.raises(LeaseTaken) as taken:
        store.lease(TASK, "b", 2_000_000_000_000, 1_000)
    assert taken.value.until_ms == 2_000_000_000_000 and taken.value.state == TaskState({})
    store.record(TASK, "a", {"SchedAt": Stamp(5_000, "sqs:m1")}, 1_900_000_000)
    item = table.item(TASK.pk)
    assert item["sched_at_issued"] == {"N": "5000"} and item["sched_at_by"] == {"S": "sqs:m1"}
    assert "lease_owner" not in item and item["expires_at"] == {"N": "1900000000"}
    # free again: b takes it and sees what a applied, with no read before the write
    assert store.lease(TASK, "b", 2_000_000_000_000, 1_000).applied == {"SchedAt": Stamp(5_000, "sqs:m1")}


def test_a_success_after_its_lease_ran_out_never_lowers_a_stamp(table: MotoDynamo) -> None:
    store = DynamoStore(table.table)
    store.lease(TASK, "slow", 10, 1)  # its lease ran out at 10 ms
    store.lease(TASK, "fast", 2_000_000_000_000, 20)
    store.record(TASK, "fast", {"SchedAt": Stamp(9_000, "new")}, 1_900_000_000)
    store.record(TASK, "slow", {"SchedAt": Stamp(8_000, "old"), "Content": Stamp(8_000, "old")}, 1_900_000_000)
    item = table.item(TASK.pk)
    assert item["sched_at_issued"] == {"N": "9000"} and item["content_issued"] == {"N": "8000"}
    store.release(TASK, "slow")  # not its lease any more: nothing happens
    assert store.lease(TASK, "x", 1, 0).applied["SchedAt"] == Stamp(9_000, "new")


def test_two_modifications_of_one_task_never_run_at_once_across_processes(table: MotoDynamo) -> None:
    # Given four processes that each take the task eight times and hold it 30 ms
    env = {**os.environ, **table.env, "PYTHONPATH": str(ROOT)}
    racers = [subprocess.Popen([sys.executable, "-m", "tests.support.lease_racer", table.table, "8", f"p{i}"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for i in range(4)]
    results = [json.loads(racer.communicate(timeout=120)[0]) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers)
    # Then no two holds overlap, and each process got its turns
    held = sorted((start, end) for result in results for start, end in result["held"])
    assert len(held) == 32
    assert all(end <= next_start for (_, end), (next_start, _) in zip(held, held[1:], strict=False))


@pytest.fixture
def emu(table: MotoDynamo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=9, rate_limit=0)) as running:
        configure(monkeypatch, {"IM_ENDPOINT": running.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY,
                                "IM_ADMIN": ADMIN, "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}",
                                "IM_MAX_ATTEMPTS": "1", **table.env})
        yield running
    runtime.reset()


def invoke_elsewhere(event: Any, tmp_path: Path) -> Any:
    """``timpush invoke`` in a process of its own: another instance of the fleet."""
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "timpush.cli", "invoke", str(path)], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_order_holds_across_the_fleet(emu: Emulator, table: MotoDynamo, tmp_path: Path) -> None:
    # Given an operator's change over HTTP, applied by one instance
    task = add_task(emu)
    answer = invoke_elsewhere(http_event(f"/sched-tasks/{task}", json.dumps({"Type": "All", "SchedAt": NEW})),
                              tmp_path)
    assert answer["statusCode"] == 200
    item = table.item(TaskKey(APP, task).pk)
    assert item["sched_at_by"]["S"].startswith("http:") and "lease_owner" not in item
    emu.clear_requests()
    # When an older queue message reaches another instance (this process)
    old = sqs_record(json.dumps({"TaskID": task, "Type": "All", "SchedAt": OLD}), sent=1_780_000_000_000)
    assert failed_ids(lambda_handler(sqs_event([old]), LocalContext())) == []
    # Then it is superseded, not sent, and the task keeps the operator's time
    assert modify_requests(emu) == [] and get_task(emu, task)["SchedAt"] == NEW


def test_a_redrive_to_direct_is_ordered_by_the_dead_letters_issued_at(emu: Emulator, tmp_path: Path) -> None:
    task = add_task(emu)
    assert lambda_handler({"TaskID": task, "Type": "All", "SchedAt": NEW}, LocalContext())["succeeded"] == 1
    letters = tmp_path / "old.jsonl"
    raw = json.dumps({"TaskID": task, "Type": "All", "SchedAt": OLD})
    letters.write_text(json.dumps({
        "kind": "timpush.dead-letter", "version": 1, "error": {"code": 90105, "info": "internal error",
                                                               "class": "retryable", "origin": "remote"},
        "request": json.loads(raw), "raw": raw, "source": {"kind": "sqs", "id": "m-old", "receive_count": 5},
        "attempts": 4, "failed_at": "2026-11-30T00:00:00Z", "issued_at": "2026-11-29T23:59:00.000Z"}) + "\n")
    emu.clear_requests()
    done = subprocess.run([sys.executable, "-m", "timpush.cli", "redrive", "--from", f"file:{letters}", "--to",
                           "direct"], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert modify_requests(emu) == [] and get_task(emu, task)["SchedAt"] == NEW
    assert letters.read_text(encoding="utf-8") == ""  # finished: superseded is not a failure


def test_a_redrive_to_direct_keeps_each_change_in_its_place_in_a_tie(emu: Emulator, tmp_path: Path) -> None:
    # Given, on two tasks, a change applied and a dead letter of another change with the same issue time:
    # on the first task the dead letter lost the tie (its id's key is lower), on the second it won it
    low_id, high_id = ids_by_digest()
    at, sent = "2026-11-29T23:59:00.000Z", 1_795_996_740_000  # one time, as ISO and as a SentTimestamp
    lines = []
    for applied_id, dead_id in ((high_id, low_id), (low_id, high_id)):
        task = add_task(emu)
        applied = sqs_record(json.dumps({"TaskID": task, "Type": "All", "SchedAt": NEW}), message_id=applied_id,
                             sent=sent)
        assert failed_ids(lambda_handler(sqs_event([applied]), LocalContext())) == []
        raw = json.dumps({"TaskID": task, "Type": "All", "SchedAt": OLD})
        lines.append(json.dumps({
            "kind": "timpush.dead-letter", "version": 1, "error": {"code": 90105, "info": "internal error",
                                                                   "class": "retryable", "origin": "remote"},
            "request": json.loads(raw), "raw": raw, "source": {"kind": "redrive", "id": "another-id"},
            "attempts": 1, "failed_at": "2026-11-30T00:00:00Z", "issued_at": at, "issued_by": f"sqs:{dead_id}"}))
    letters = tmp_path / "tie.jsonl"
    letters.write_text("\n".join(lines) + "\n", encoding="utf-8")
    emu.clear_requests()
    # When both are applied again in another process
    done = subprocess.run([sys.executable, "-m", "timpush.cli", "redrive", "--from", f"file:{letters}", "--to",
                           "direct"], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    # Then the one that lost the tie is superseded and the one that won it is applied
    assert [r["body"]["SchedAt"] for r in modify_requests(emu)] == [OLD]  # type: ignore[index]
    first_task, second_task = (json.loads(line)["request"]["TaskID"] for line in lines)
    assert get_task(emu, first_task)["SchedAt"] == NEW and get_task(emu, second_task)["SchedAt"] == OLD


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_store_sends_nothing_unguarded(emu: Emulator, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    task = add_task(emu)
    emu.clear_requests()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{closed_port()}")
    dynamo_store.forget_client()
    runtime.reset()
    mod = {"TaskID": task, "Type": "All", "SchedAt": NEW}
    # SQS: the message stays in its queue
    message = sqs_record(json.dumps(mod))
    assert failed_ids(lambda_handler(sqs_event([message]), LocalContext())) == [message["messageId"]]
    # HTTP: 503 with -6
    answer = lambda_handler(http_event(f"/sched-tasks/{task}", json.dumps(mod)), LocalContext())
    assert answer["statusCode"] == 503 and json.loads(answer["body"])["ErrorCode"] == -6
    # direct: dead-lettered with -6, retryable, naming the store and nothing else
    result = lambda_handler(mod, LocalContext())
    assert result["results"][0]["ErrorCode"] == -6
    [letter] = dead_letters(tmp_path / "dead.jsonl")
    assert letter["error"]["class"] == "retryable" and "dynamodb:timpush-state" in letter["error"]["info"]
    assert modify_requests(emu) == []


# --- the whole order key in DynamoDB (issue 18) ------------------------------------------------------------


def test_a_tie_ends_the_same_on_fresh_instances_whichever_they_see_first(emu: Emulator, table: MotoDynamo,
                                                                          tmp_path: Path) -> None:
    # Given two different standard-queue messages with one SentTimestamp, for each of two tasks
    low_id, high_id = ids_by_digest()
    sent = 1_780_000_000_000
    ends = []
    for order in ((low_id, high_id), (high_id, low_id)):
        task = add_task(emu)
        value = {low_id: OLD, high_id: NEW}
        # When each message reaches an instance of its own (a fresh process), in one order or the other
        for message_id in order:
            event = sqs_event([sqs_record(json.dumps({"TaskID": task, "Type": "All", "SchedAt": value[message_id]}),
                                          message_id=message_id, sent=sent)])
            assert failed_ids(invoke_elsewhere(event, tmp_path)) == []
        ends.append(get_task(emu, task)["SchedAt"])
        item = table.item(TaskKey(APP, task).pk)
        assert item["sched_at_key"]["S"] == Stamp(sent, f"sqs:{high_id}").key
        assert item["sched_at_by"]["S"] == f"sqs:{high_id}" and item["sched_at_issued"]["N"] == str(sent)
    # Then both end with the change of the greater key
    assert ends == [NEW, NEW]


def _legacy_item(table: MotoDynamo, issued: int, key: str | None = None) -> None:
    """The item as the previous version wrote it (no key), or one it raised during a deployment."""
    item = {"pk": {"S": TASK.pk}, "sched_at_issued": {"N": str(issued)}, "sched_at_by": {"S": "sqs:legacy"}}
    if key is not None:
        item["sched_at_key"] = {"S": key}
    table.client().put_item(TableName=table.table, Item=item)


def test_an_item_written_before_the_key_is_never_lowered_by_an_older_change(table: MotoDynamo) -> None:
    store = DynamoStore(table.table)
    _legacy_item(table, 5_000)
    order = TaskOrder(store)
    # its change wins every tie at its millisecond, as equal issue times did then
    for stamp in (Stamp(4_999, "sqs:a", 10 ** 39, 9), Stamp(5_000, "sqs:a", 10 ** 39, 999_998), Stamp(5_000)):
        assert order.claim(TASK, ("SchedAt",), stamp, deadline=1e12).kept == ()
        store.record(TASK, "a lease that ran out", {"SchedAt": stamp}, 0)  # the conditional path
        assert "sched_at_key" not in table.item(TASK.pk) and table.item(TASK.pk)["sched_at_issued"]["N"] == "5000"
    # a later millisecond is newer, and writes the key beside the time
    newer = Stamp(5_001, "sqs:b")
    store.record(TASK, "a lease that ran out", {"SchedAt": newer}, 0)
    assert table.item(TASK.pk)["sched_at_key"] == {"S": newer.key}
    assert store.lease(TASK, "x", 1, 0).applied == {"SchedAt": newer}


def test_a_later_issue_time_written_by_the_previous_version_during_a_deployment_still_counts(
        table: MotoDynamo) -> None:
    store = DynamoStore(table.table)
    _legacy_item(table, 6_000, key=Stamp(5_000, "sqs:new-version").key)  # an old instance raised _issued only
    assert TaskOrder(store).claim(TASK, ("SchedAt",), Stamp(5_500, "sqs:c"), deadline=1e12).kept == ()
    store.record(TASK, "gone", {"SchedAt": Stamp(5_500, "sqs:c")}, 0)
    store.record(TASK, "gone", {"SchedAt": Stamp(6_000, "sqs:c")}, 0)  # its tie is the old change's
    assert table.item(TASK.pk)["sched_at_issued"] == {"N": "6000"}
    assert table.item(TASK.pk)["sched_at_by"] == {"S": "sqs:legacy"}
    store.record(TASK, "gone", {"SchedAt": Stamp(6_001, "sqs:c")}, 0)
    assert table.item(TASK.pk)["sched_at_key"] == {"S": Stamp(6_001, "sqs:c").key}


_EXAMPLES = iter(range(10 ** 6))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(most=6))
def test_each_field_ends_with_the_change_of_the_largest_key_in_dynamodb(
        table: MotoDynamo, history: tuple[list[Change], list[Delivery]]) -> None:
    changes, deliveries = history
    task = TaskKey(APP, 10_000 + next(_EXAMPLES))  # one table for every example: a task of its own each
    assert replay(TaskOrder(DynamoStore(table.table)), task, changes, deliveries) == expected(changes)
