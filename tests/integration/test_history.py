"""A task's history (DESIGN "Task history: who moved my push?"), one behaviour suite over every home of the state
(memory, DynamoDB in moto's server, a real redis-server): the outcomes of SQS, HTTP and direct invocations land as
entries in order with the right fields, a superseded entry names the change that won, the newest 50 are kept, no
user id is stored, a history that cannot be written never costs the modification; and four processes changing one
task leave one entry per change. ``timpush history`` reads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from handler import lambda_handler, runtime
from handler.order.history import CAP, Draft, newest
from handler.order.key import Stamp, TaskKey
from handler.order.store import StoreMisconfigured, TaskStore
from handler.order.task import TaskOrder
from tests.support.homes import Home, forget_clients
from tests.support.im import ADMIN, APP, KEY, add_task, get_task
from tests.support.lambda_events import configure, failed_ids, http_event, sent_ms, sqs_event, sqs_record
from timpush import cli
from timpush.context import LocalContext
from timpush.emulator import Emulator, EmulatorSettings, Fault

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OLD, NEW, NEWER = "2031-01-01 09:00:00", "2031-02-02 10:00:00", "2031-03-03 11:00:00"
LONG_TITLE = "A title that goes on for well over forty characters, to be cut"




@pytest.fixture
def emu(home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The emulator (no rate limit), and this process's handler configured for it and the home."""
    monkeypatch.delenv("IM_STATE_STORE", raising=False)
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=28)) as running:
        configure(monkeypatch, {"IM_ENDPOINT": running.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY,
                                "IM_ADMIN": ADMIN, "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}",
                                "IM_RATE_LIMIT": "0", "IM_MAX_ATTEMPTS": "1", **home.env})
        forget_clients()
        runtime.runtime().modifier.order.store.keeps_history = True  # memory keeps one only when asked (the demo)
        yield running
    forget_clients()
    runtime.reset()


def store() -> TaskStore:
    """The store this process's handler writes to (for memory: its own, which only it can read)."""
    return runtime.runtime().modifier.order.store


def entries(task: int) -> list[dict[str, Any]]:
    return newest(store().history(TaskKey(APP, task)))


def test_three_channels_land_in_order_with_their_fields(emu: Emulator) -> None:
    # Given a task changed by an operator over HTTP (SchedAt)
    task = add_task(emu)
    patch = http_event(f"/sched-tasks/{task}", json.dumps({"Type": "All", "SchedAt": NEW}))
    assert lambda_handler(patch, LocalContext())["statusCode"] == 200
    # When a queue message sent a minute earlier arrives late (SchedAt: superseded by the operator's change)
    late = sqs_record(json.dumps({"TaskID": task, "Type": "All", "SchedAt": OLD}), sent=sent_ms() - 60_000)
    assert failed_ids(lambda_handler(sqs_event([late]), LocalContext())) == []
    # And a direct invocation's newer change, which the server refuses (dead-lettered with the server's code)
    emu.add_faults([Fault(kind="error", code=90001, api="modify")])
    direct = LocalContext()
    content = {"OfflinePushInfo": {"Title": LONG_TITLE, "Desc": "d"}}
    result = lambda_handler({"TaskID": task, "Type": "All", "SchedAt": NEWER, "Content": content}, direct)
    assert result["dead_lettered"] == 1
    # Then the history tells the three, oldest first, with what each carried
    told = entries(task)
    assert [(e["outcome"], e["source"], e["error_code"]) for e in told] == [
        ("succeeded", "http", 0), ("superseded", "sqs", -7), ("dead_lettered", "direct", 90001)]
    applied, superseded, failed = told
    assert applied["change"] == f"http:{patch['requestContext']['requestId']}"
    assert applied["fields"] == {"SchedAt": NEW} and applied["superseded_by"] == {}
    assert superseded["change"] == f"sqs:{late['messageId']}" and superseded["fields"] == {"SchedAt": OLD}
    assert superseded["superseded_by"] == {"SchedAt": applied["change"]}  # names the change that won
    assert superseded["issued_at"] < applied["issued_at"] <= failed["issued_at"]
    assert failed["change"] == f"direct:{direct.aws_request_id}" and failed["request_id"] == direct.aws_request_id
    assert failed["fields"]["SchedAt"] == NEWER
    assert failed["fields"]["Content"]["title"] == LONG_TITLE[:40]
    assert len(failed["fields"]["Content"]["digest"]) == 16
    assert all(e["at"].endswith("Z") and len(e["at"]) == 24 for e in told)  # ISO 8601 UTC, milliseconds
    assert get_task(emu, task)["SchedAt"] == NEW


def test_a_redelivery_that_was_applied_adds_nothing(emu: Emulator) -> None:
    task = add_task(emu)
    record = sqs_record(json.dumps({"TaskID": task, "Type": "All", "SchedAt": NEW}))
    for receives in (1, 2):  # the same message, delivered again
        record["attributes"]["ApproximateReceiveCount"] = str(receives)
        assert failed_ids(lambda_handler(sqs_event([record]), LocalContext())) == []
    assert [e["outcome"] for e in entries(task)] == ["succeeded"]


def test_no_user_id_is_stored(emu: Emulator) -> None:
    task = add_task(emu, "User", To_Account=["alice-7c1f"])
    users = {"To_Account": ["bob-5e9a", "carol-2d4b"], "OfflinePushInfo": {"Title": "Yours", "Desc": "d"}}
    assert lambda_handler({"TaskID": task, "Type": "User", "Content": users}, LocalContext())["succeeded"] == 1
    kept = json.dumps(store().history(TaskKey(APP, task)))
    assert "Yours" in kept and "bob-5e9a" not in kept and "carol-2d4b" not in kept


def test_a_history_that_cannot_be_written_never_costs_the_modification(
        emu: Emulator, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    task = add_task(emu)
    order = runtime.runtime().modifier.order
    order.store = NoHistory(order.store)
    assert lambda_handler({"TaskID": task, "Type": "All", "SchedAt": NEW}, LocalContext())["succeeded"] == 1
    assert get_task(emu, task)["SchedAt"] == NEW
    # the order was recorded all the same: the same change again is not sent
    assert order.store.lease(TaskKey(APP, task), "look", 1, 0).applied["SchedAt"].key
    assert "task history not written" in caplog.text  # a WARNING, and its metric in the flushed EMF
    assert '"HistoryNotWritten":[1.0]' in capsys.readouterr().out


class NoHistory:
    """A home whose history writes fail (every write that carries an entry), the rest as it is."""

    def __init__(self, inner: TaskStore) -> None:
        self.inner = inner
        self.name = inner.name
        self.keeps_history = True

    def lease(self, task: TaskKey, owner: str, until_ms: int, now_ms: int) -> Any:
        return self.inner.lease(task, owner, until_ms, now_ms)

    def record(self, task: TaskKey, owner: str, applied: Mapping[str, Stamp], expires_at: int,
               entry: str | None = None) -> None:
        if entry is not None:
            raise StoreMisconfigured(self.name, "out of memory")
        self.inner.record(task, owner, applied, expires_at)

    def release(self, task: TaskKey, owner: str, entry: str | None = None) -> None:
        if entry is not None:
            raise StoreMisconfigured(self.name, "out of memory")
        self.inner.release(task, owner)

    def note(self, task: TaskKey, entry: str, expires_at: int) -> None:
        raise StoreMisconfigured(self.name, "out of memory")

    def history(self, task: TaskKey) -> list[str]:
        return self.inner.history(task)

    def describe(self) -> list[tuple[str, str]]:
        return self.inner.describe()


def test_the_newest_fifty_are_kept(home: Home) -> None:
    # Given 55 successes of one task under its lease, then 15 dead letters written without it
    task = TaskKey(APP, 5_000)
    order = TaskOrder(home.store())
    for index in range(55):
        stamp = Stamp(1_000_000 + index, f"sqs:m{index}")
        draft = Draft(task, stamp, "sqs", {"SchedAt": NEW})
        claim = order.claim(task, ("SchedAt",), stamp, time.monotonic() + 5, draft=draft)
        order.applied(claim, None, draft)
    kept = newest(order.store.history(task))
    assert [e["change"] for e in kept] == [f"sqs:m{i}" for i in range(5, 55)]
    for index in range(15):
        order.noted(task, Draft(task, Stamp(2_000_000 + index, f"direct:d{index}"), "direct", {}), "dead_lettered",
                    90001)
    # Then the history holds the newest 50, oldest first; what is stored stays within the bound
    kept = newest(order.store.history(task))
    assert [e["change"] for e in kept] == [f"sqs:m{i}" for i in range(20, 55)] + [f"direct:d{i}" for i in range(15)]
    assert len(order.store.history(task)) <= CAP + 11


def test_four_processes_one_task_one_entry_per_change(shared: Home, tmp_path: Path) -> None:
    # Given four processes, each applying three changes of one task through the direct trigger
    home = shared
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=29)) as emu:
        task = add_task(emu)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "IM_ENDPOINT": emu.url, "IM_SDKAPPID": str(APP),
               "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN, "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}",
               "IM_RATE_LIMIT": "0", **home.env}
        senders = [subprocess.Popen([sys.executable, "-m", "tests.support.history_sender", str(task), "3"],
                                    cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for _ in range(4)]
        changes = [change for sender in senders for change in json.loads(sender.communicate(timeout=120)[0])]
    assert all(sender.returncode == 0 for sender in senders)
    # Then the task's history holds exactly one entry for each of the twelve changes
    told = newest(home.store().history(TaskKey(APP, task)))
    assert len(changes) == 12
    assert sorted(e["change"] for e in told) == sorted(changes)
    assert {e["outcome"] for e in told} <= {"succeeded", "superseded", "dead_lettered"}


def test_timpush_history_prints_the_story(shared: Home, capsys: pytest.CaptureFixture[str]) -> None:
    home = shared
    task = TaskKey(APP, 6_000)
    order = TaskOrder(home.store())
    first, second = Stamp(1_000, "http:r1"), Stamp(2_000, "sqs:m2")
    claim = order.claim(task, ("SchedAt",), second, time.monotonic() + 5)
    order.applied(claim, None, Draft(task, second, "sqs", {"SchedAt": NEW}, "req-2"))
    order.claim(task, ("SchedAt",), first, time.monotonic() + 5, draft=Draft(task, first, "http", {"SchedAt": OLD}))
    # a table for people, oldest first
    assert cli.main(["history", str(task.task_id), "--sdkappid", str(APP)]) == 0
    table = capsys.readouterr().out
    assert table.index("sqs:m2") < table.index("http:r1") and "superseded" in table and "SchedAt: sqs:m2" in table
    # JSON for scripts, --limit keeps the newest
    assert cli.main(["history", str(task.task_id), "--sdkappid", str(APP), "--json", "--limit", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sdkappid"] == APP and doc["task_id"] == task.task_id
    assert [(e["outcome"], e["change"]) for e in doc["entries"]] == [("superseded", "http:r1")]
    # an empty history is no failure, and says so
    assert cli.main(["history", "7", "--sdkappid", str(APP)]) == 0
    assert "no history for task 7" in capsys.readouterr().out


def test_timpush_history_needs_a_store_it_can_read(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("IM_STATE_STORE", raising=False)
    assert cli.main(["history", "5", "--sdkappid", str(APP)]) == 2
    assert "needs IM_STATE_STORE" in capsys.readouterr().err
    monkeypatch.setenv("IM_STATE_STORE", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert cli.main(["history", "5", "--sdkappid", str(APP)]) == 1
    assert "the state store cannot be read: redis://127.0.0.1:1/0: " in capsys.readouterr().err
    forget_clients()
