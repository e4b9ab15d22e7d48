"""One rate budget for the whole fleet: processes (not threads) sharing the DynamoDB item (moto server,
serialized) against the emulator, which enforces the API's own 5 requests/second per app and API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handler import lambda_handler, runtime
from handler.state import dynamodb as dynamo_store
from handler.state.dynamodb import DynamoSlots
from tests.fakes.moto_dynamodb import MotoDynamo, moto_dynamodb
from tests.support.im import ADMIN, APP, KEY, add_task, modify_requests
from tests.support.lambda_events import configure, failed_ids, http_event, sqs_event, sqs_record
from timpush.context import LocalContext
from timpush.emulator import Emulator, EmulatorSettings, Fault

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCHED = "2031-04-04 04:04:04"
PK = f"rate#{APP}#modify_sched_task"


@pytest.fixture(scope="module")
def dynamo() -> Iterator[MotoDynamo]:
    with moto_dynamodb() as running:
        yield running


@pytest.fixture
def fleet_env(dynamo: MotoDynamo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    dynamo.reset()
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=4, rate_limit=5)) as emu:
        env = {"IM_ENDPOINT": emu.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN,
               "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}", "IM_RATE_LIMIT": "5", **dynamo.env}
        configure(monkeypatch, env)
        dynamo_store.forget_client()
        monkeypatch.setattr(sys.modules[__name__], "EMU", emu, raising=False)
        yield env
    dynamo_store.forget_client()
    runtime.reset()


def emu() -> Emulator:
    return sys.modules[__name__].EMU  # type: ignore[no-any-return]


def tasks(count: int) -> list[int]:
    """Created at the API's own pace (the emulator limits add_sched_task too)."""
    made = []
    for _ in range(count):
        made.append(add_task(emu()))
        time.sleep(0.21)
    emu().clear_requests()
    return made


def send_from_processes(payloads: list[list[dict[str, Any]]], env: dict[str, str], tmp_path: Path,
                        ) -> list[subprocess.CompletedProcess[str]]:
    """``timpush invoke`` on each payload, all at once, each in a process of its own."""
    running = []
    for i, payload in enumerate(payloads):
        path = tmp_path / f"payload-{i}.json"
        path.write_text(json.dumps(payload), encoding="utf-8")
        running.append(subprocess.Popen([sys.executable, "-m", "timpush.cli", "invoke", str(path)], cwd=ROOT,
                                        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True))
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in running]


def arrivals() -> list[float]:
    return sorted(float(r["t"]) for r in modify_requests(emu()))  # type: ignore[arg-type]


def worst_window(times: list[float]) -> int:
    return max(sum(1 for u in times if t <= u < t + 1.0) for t in times)


def test_processes_share_one_budget_and_use_all_of_it(fleet_env: dict[str, str], tmp_path: Path) -> None:
    # Given three processes with ten modifications each, every one allowed IM_RATE_LIMIT=5 for the fleet
    made = tasks(30)
    payloads = [[{"TaskID": t, "Type": "All", "SchedAt": SCHED} for t in made[i::3]] for i in range(3)]
    # When they all send at once
    done = send_from_processes(payloads, fleet_env, tmp_path)
    # Then every modification succeeded, the server never said 60007, no second held more than 5,
    # and together they took about the time the budget allows (29 intervals of 1.05/5 s), not 3 times it
    assert [json.loads(d.stdout)["succeeded"] for d in done] == [10, 10, 10], [d.stderr[-500:] for d in done]
    codes = [r["code"] for r in modify_requests(emu())]
    sent = arrivals()
    assert codes.count(0) == 30 and 60007 not in codes
    assert worst_window(sent) <= 5
    assert sent[-1] - sent[0] < 29 * 1.05 / 5 + 1.5


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_store_falls_back_to_the_fallback_rate(fleet_env: dict[str, str], tmp_path: Path) -> None:
    env = {**fleet_env, "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{closed_port()}", "IM_RATE_FALLBACK": "2"}
    # The handler would not send at all without the store (the task order lives there too: -6), so the
    # pacing is run on its own, in a process of its own, with the store's endpoint closed
    code = ("import json,sys,time; from handler.state import open_pacing; from handler.observability import metrics; "
            "p = open_pacing(sys.argv[1], 5, 2, 'modify_sched_task')(1400000001); "
            "sent = [p.acquire(time.monotonic() + 30) for _ in range(6)]; metrics.flush_metrics(); "
            "print(json.dumps(sent))")
    done = subprocess.run([sys.executable, "-c", code, env["IM_STATE_STORE"]], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-1000:]
    sent = json.loads(done.stdout.splitlines()[-1])
    assert worst_window(sent) <= 2 and sent[-1] - sent[0] >= 2.0  # six at 2/s: at least two seconds
    assert "rate store unreachable" in done.stderr and '"store":"dynamodb:timpush-state"' in done.stderr
    assert '"RateStoreUnavailable":[1.0]' in done.stdout  # the EMF document, counted once
    assert modify_requests(emu()) == []


def test_a_60007_pauses_the_whole_fleet(fleet_env: dict[str, str], dynamo: MotoDynamo) -> None:
    [task] = tasks(1)
    emu().add_faults([Fault(kind="rate_limit", count=1, api="modify")])
    result = lambda_handler({"TaskID": task, "Type": "All", "SchedAt": SCHED}, LocalContext())
    assert result["succeeded"] == 1
    first, second = arrivals()
    # the retry waited for the pause, and the pause is in the store for every other process
    assert second - first >= 0.95
    held_until = int(dynamo.item(PK)["next_free"]["N"]) / 1000
    assert held_until >= first + 0.95
    other = DynamoSlots(dynamo.table)  # another process: the slot it can take now is after the pause
    assert other.take(PK, round(first * 1000) + 500, round(first * 1000) + 706, None) is not None


def test_a_slot_past_the_deadline_is_not_waited_for(fleet_env: dict[str, str], dynamo: MotoDynamo) -> None:
    [task] = tasks(1)
    DynamoSlots(dynamo.table).hold(PK, round(time.time() * 1000) + 20_000)  # the budget is spoken for 20 s
    body = json.dumps({"Type": "All", "SchedAt": SCHED})
    started = time.monotonic()
    answer = lambda_handler(http_event(f"/sched-tasks/{task}", body), LocalContext(timeout_seconds=10))
    assert answer["statusCode"] == 429 and answer["headers"]["Retry-After"] == "1"
    assert json.loads(answer["body"])["ErrorCode"] == 60007
    message = sqs_record(json.dumps({"TaskID": task, "Type": "All", "SchedAt": SCHED}))
    assert failed_ids(lambda_handler(sqs_event([message]), LocalContext(timeout_seconds=10))) == [message["messageId"]]
    assert time.monotonic() - started < 5  # neither waited for a slot it could not use
    assert modify_requests(emu()) == []
