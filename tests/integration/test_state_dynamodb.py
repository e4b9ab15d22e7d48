"""The whole order key in DynamoDB (moto server, serialized): a tie on fresh instances, a redrive's place in a
tie, items written before the key, and the key property. What every home shares is in test_state_homes.py
and test_fleet_state.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from handler import lambda_handler, runtime
from handler.order.key import Stamp, TaskKey
from handler.order.task import TaskOrder
from handler.state import dynamodb as dynamo_store
from handler.state.dynamodb import DynamoStore
from tests.fakes.moto_dynamodb import MotoDynamo, moto_dynamodb
from tests.support.im import ADMIN, APP, KEY, add_task, get_task, modify_requests
from tests.support.lambda_events import configure, failed_ids, ids_by_digest, invoke_elsewhere, sqs_event, sqs_record
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


@pytest.fixture
def emu(table: MotoDynamo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=9, rate_limit=0)) as running:
        configure(monkeypatch, {"IM_ENDPOINT": running.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY,
                                "IM_ADMIN": ADMIN, "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}",
                                "IM_MAX_ATTEMPTS": "1", **table.env})
        yield running
    runtime.reset()


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
