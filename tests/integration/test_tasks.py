"""``timpush tasks get/list`` against the emulator over loopback: tables, JSON, errors with meaning, paging."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from handler import runtime
from handler.state import dynamodb as dynamo_store
from tests.fakes.moto_dynamodb import moto_dynamodb
from tests.support.im import ADMIN, APP, KEY, add_task
from timpush.cli import main
from timpush.emulator import Emulator, EmulatorSettings
from timpush.emulator.faults import Fault

pytestmark = pytest.mark.integration


def _lists(emu: Emulator) -> list[dict[str, object]]:
    return [r["body"] for r in emu.requests() if r["api"] == "list_sched_task"]  # type: ignore[misc]


@pytest.fixture
def shanghai(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_get_shows_each_task_in_utc_and_local_time(
    handler_env: Emulator, shanghai: None, capsys: pytest.CaptureFixture[str]
) -> None:
    task = add_task(handler_env, "Tag", sched_at="2031-06-15 14:00:00")
    assert main(["tasks", "get", str(task)]) == 0
    out = capsys.readouterr().out
    assert str(task) in out and "Tag" in out and "pending" in out
    assert "2031-06-15 14:00:00" in out and "2031-06-15 22:00:00 +0800" in out


def test_get_names_an_unknown_task_with_the_code_and_its_meaning(
    handler_env: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    known = add_task(handler_env)
    assert main(["tasks", "get", str(known), "999", "--json"]) == 1
    out, err = capsys.readouterr()
    assert "timpush tasks: 999: error 90104 (invalid request parameters" in err and "invalid TaskID" in err
    document = json.loads(out)
    assert [t["TaskID"] for t in document["tasks"]] == [known]
    assert document["tasks"][0]["Status"] == "pending"
    assert document["errors"] == [{"TaskID": 999, "ErrorCode": 90104, "ErrorInfo": "invalid TaskID",
                                   "meaning": "invalid request parameters (e.g. an unknown TaskID or a wrong Type)"}]


def test_wrong_app_is_the_api_code_with_its_meaning(
    handler_env: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IM_SDKAPPID", "1400000000")  # the drift docs/deploy.md once had
    runtime.reset()
    assert main(["tasks", "list"]) == 1
    assert "error 70020 (SDKAppID not found: check the SDKAppID and the region)" in capsys.readouterr().err


def test_bad_arguments_and_configuration_exit_2(
    handler_env: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["tasks", "get", "12x"])
    assert exited.value.code == 2
    assert "expected a positive integer, got '12x'" in capsys.readouterr().err
    monkeypatch.delenv("IM_SECRET_KEY")
    runtime.reset()
    assert main(["tasks", "list"]) == 2
    assert "configuration error: IM_SECRET_KEY or IM_SECRET_SOURCE" in capsys.readouterr().err


@pytest.fixture
def unpaced(monkeypatch: pytest.MonkeyPatch, handler_env: Emulator) -> Iterator[Emulator]:
    """An emulator without its 5/s limit, so a test can create more tasks than a page holds quickly."""
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=3, rate_limit=0)) as emu:
        monkeypatch.setenv("IM_ENDPOINT", emu.url)
        monkeypatch.setenv("IM_RATE_LIMIT", "0")
        runtime.reset()
        yield emu


def test_list_pages_through_list_sched_task_up_to_the_limit(
    unpaced: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    created = [add_task(unpaced) for _ in range(120)]
    unpaced.clear_requests()
    assert main(["tasks", "list", "--limit", "110", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["Total"] == 120
    assert [t["TaskID"] for t in document["tasks"]] == sorted(created, reverse=True)[:110]  # newest first
    assert [(b["Offset"], b["Want"]) for b in _lists(unpaced)] == [(0, 50), (50, 50), (100, 10)]
    assert {(b["OrderBy"], b["Asc"]) for b in _lists(unpaced)} == {("createat", False)}


def test_list_stops_at_the_end_and_prints_a_table(unpaced: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(3):
        add_task(unpaced)
    unpaced.clear_requests()
    assert main(["tasks", "list", "--limit", "500"]) == 0
    out = capsys.readouterr().out
    assert "3 of 3 task(s), newest first" in out and "SchedAt (UTC)" in out
    assert [(b["Offset"], b["Want"]) for b in _lists(unpaced)] == [(0, 50)]


def test_list_retries_a_rate_limited_answer(handler_env: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    add_task(handler_env)
    handler_env.add_faults([Fault.parse("rate_limit:count=1:api=list_sched_task")])
    assert main(["tasks", "list", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["tasks"]) == 1
    assert [r["code"] for r in handler_env.requests() if r["api"] == "list_sched_task"] == [60007, 0]


def test_reads_take_slots_of_the_fleet_budget_per_api(
    handler_env: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    task = add_task(handler_env)
    with moto_dynamodb() as dynamo:
        for name, value in dynamo.env.items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        dynamo_store.forget_client()  # the store's client is kept per process: this server is new
        assert main(["tasks", "get", str(task)]) == 0
        assert main(["tasks", "list"]) == 0
        # each API's next free slot, as modifications keep theirs (handler/state/rate.py)
        assert dynamo.item(f"rate#{APP}#get_sched_task") and dynamo.item(f"rate#{APP}#list_sched_task")
        assert not dynamo.item(f"rate#{APP}#modify_sched_task")
    runtime.reset()
    dynamo_store.forget_client()
    assert str(task) in capsys.readouterr().out


def test_with_several_apps_sdkappid_chooses_the_app_to_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two apps, each on its own emulator with its own key, configured with IM_APPS
    other, other_key = 1400000002, "tp-test-tasks-second-key-4d5e6f"
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), rate_limit=0)) as a, \
         Emulator(EmulatorSettings(sdkappid=other, key=other_key, admins=(ADMIN,), rate_limit=0,
                                   first_task_id=2_000_000_001)) as b:
        add_task(a)
        task_b = add_task(b, app=other, key=other_key)
        apps = [{"SDKAppID": APP, "Key": KEY, "Endpoint": a.url}, {"SDKAppID": other, "Key": other_key,
                                                                    "Endpoint": b.url}]
        for name in ("IM_SDKAPPID", "IM_SECRET_KEY", "IM_SECRET_SOURCE", "IM_ENDPOINT"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("IM_APPS", json.dumps(apps))
        runtime.reset()
        # When the second app's task is read by its app, and then without naming one
        assert main(["tasks", "get", str(task_b), "--sdkappid", str(other), "--json"]) == 0
        found = json.loads(capsys.readouterr().out)["tasks"]
        assert main(["tasks", "list"]) == 2
        err = capsys.readouterr().err
    # Then it came from the second app's own server, signed with its key; without --sdkappid it is a usage error
    assert [t["TaskID"] for t in found] == [task_b]
    assert [r["query"]["sdkappid"] for r in b.requests() if r["api"] == "get_sched_task"] == [str(other)]
    assert "timpush tasks: --sdkappid: required: this deployment serves several apps (1400000001, 1400000002)" in err
    assert "90104" not in err
    assert not [r for r in a.requests() + b.requests() if r["api"] == "list_sched_task"]  # nothing was asked
