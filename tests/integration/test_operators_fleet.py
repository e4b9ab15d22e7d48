"""Issue 25's laptop story: the operators' tools are part of the fleet (DESIGN "Order", last paragraph).

The fleet keeps its order in a Redis; a newer change is applied there and an older one is dead-lettered. A
laptop whose environment lacks ``IM_STATE_STORE`` runs ``timpush redrive --to direct`` (or ``send --to
direct`` of an older row): it refuses before sending anything (exit 2, naming IM_STATE_STORE and
--without-store), and the emulator sees no modification. With the store it is superseded; with
``--without-store`` it is the operator's plain choice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from handler import lambda_handler, runtime
from handler.deadletter.record import Source, record
from handler.im.codes import Origin, classify
from handler.outcome import Outcome, Status
from tests.fakes.redis_server import RedisServer, redis_server
from tests.support.im import add_task, get_task, modify_requests
from timpush.cli import main
from timpush.context import LocalContext
from timpush.emulator import Emulator

pytestmark = pytest.mark.integration

OLD, NEW = "2031-01-01 09:00:00", "2031-02-02 10:00:00"


@pytest.fixture(scope="module")
def fleet_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def applied(handler_env: Emulator, fleet_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A task at NEW, applied through the fleet's store; then the laptop's environment: no IM_STATE_STORE."""
    from handler.state.redis_store import forget_clients

    fleet_redis.reset()
    monkeypatch.setenv("IM_STATE_STORE", fleet_redis.url)
    runtime.reset()
    task = add_task(handler_env)
    issued = "2026-06-01T10:00:00Z"
    assert lambda_handler({"TaskID": task, "Type": "All", "SchedAt": NEW, "IssuedAt": issued},
                          LocalContext())["succeeded"] == 1
    monkeypatch.delenv("IM_STATE_STORE")
    runtime.reset()
    handler_env.clear_requests()
    yield task
    forget_clients()
    runtime.reset()


def _older_letter(path: Path, task: int) -> None:
    raw = json.dumps({"TaskID": task, "Type": "All", "SchedAt": OLD})
    outcome = Outcome(Status.FAILED, raw, json.loads(raw), 90105, "internal error", classify(90105), Origin.REMOTE,
                      1)
    doc = record(outcome, Source("sqs", "m-old", 5))
    doc["issued_at"] = "2026-06-01T09:00:00.000Z"  # an hour before the change the fleet applied
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")


def _refused(err: str) -> bool:
    return "IM_STATE_STORE" in err and "--without-store" in err and "nothing sent" in err


def test_a_laptop_without_the_store_does_not_redrive_an_older_change(
    applied: int, handler_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    letters = tmp_path / "dl.jsonl"
    _older_letter(letters, applied)
    before = letters.read_text(encoding="utf-8")
    assert main(["redrive", "--from", f"file:{letters}", "--to", "direct"]) == 2
    assert _refused(capsys.readouterr().err)
    assert modify_requests(handler_env) == []  # the emulator saw nothing
    assert get_task(handler_env, applied)["SchedAt"] == NEW
    assert letters.read_text(encoding="utf-8") == before  # the dead letter is kept


def test_a_laptop_without_the_store_does_not_send_an_older_row(
    applied: int, handler_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text(f"TaskID,Type,SchedAt,IssuedAt\n{applied},All,{OLD},2026-06-01T09:00:00Z\n", encoding="utf-8")
    assert main(["send", "--from", str(rows), "--to", "direct"]) == 2
    assert _refused(capsys.readouterr().err)
    assert modify_requests(handler_env) == []
    assert get_task(handler_env, applied)["SchedAt"] == NEW


def test_with_the_fleets_store_the_older_change_is_superseded(
    applied: int, handler_env: Emulator, fleet_redis: RedisServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IM_STATE_STORE", fleet_redis.url)
    runtime.reset()
    letters = tmp_path / "dl.jsonl"
    _older_letter(letters, applied)
    assert main(["redrive", "--from", f"file:{letters}", "--to", "direct"]) == 0
    assert "0 succeeded, 1 superseded, 0 failed" in capsys.readouterr().out
    assert modify_requests(handler_env) == []
    assert get_task(handler_env, applied)["SchedAt"] == NEW


def test_without_store_is_the_operators_plain_choice(
    applied: int, handler_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text(f"TaskID,Type,SchedAt\n{applied},All,{OLD}\n", encoding="utf-8")
    assert main(["send", "--from", str(rows), "--to", "direct", "--without-store"]) == 0
    assert len(modify_requests(handler_env)) == 1  # this process's own order is all there is: it applies


@pytest.mark.parametrize("command", ["send", "redrive"])
def test_without_store_with_a_queue_target_is_a_usage_mistake(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(tmp_path / "rows.csv") if command == "send" else f"file:{tmp_path / 'dl.jsonl'}"
    assert main([command, "--from", source, "--to", "sqs:http://127.0.0.1:1/1/work", "--without-store"]) == 2
    assert "--without-store goes with --to direct only" in capsys.readouterr().err
