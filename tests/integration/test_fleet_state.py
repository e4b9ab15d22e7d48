"""The fleet's shared state, from processes (not threads), in each shared home: DynamoDB (moto server, serialized)
and Redis (a real redis-server). The same tests, the same expectations: leases raced across processes never
overlap, the order holds across the fleet, one rate budget for every process (the emulator enforces the API's
5 requests/second per app and API), a store that cannot be reached sends nothing unguarded, and Lambda and SCF
processes (Python 3.10) share one Redis."""

from __future__ import annotations

import functools
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from handler import lambda_handler, runtime
from handler.im.retry import RATE_LIMIT_PAUSE
from handler.order.key import TaskKey
from handler.state import rate
from handler.state.rate import FLEET_MARGIN
from tests.fakes.redis_server import free_port, redis_server
from tests.support.homes import PASSWORD, SHARED, Home, Homes, forget_clients
from tests.support.im import ADMIN, APP, KEY, add_task, dead_letters, get_task, modify_requests
from tests.support.lambda_events import configure, failed_ids, http_event, invoke_elsewhere, sqs_event, sqs_record
from tests.support.scf import require_python310
from timpush.context import LocalContext
from timpush.emulator import Emulator, EmulatorSettings, Fault

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OLD, NEW = "2031-01-01 09:00:00", "2031-02-02 10:00:00"
SCHED = "2031-04-04 04:04:04"
PK = f"rate#{APP}#modify_sched_task"



@pytest.fixture(params=SHARED)
def home(request: pytest.FixtureRequest, homes: Homes) -> Home:
    return homes.get(request.param)


@pytest.fixture
def emu(home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """The emulator enforcing 5/s, and this process configured for it and the home."""
    # The emulator is the measuring instrument and runs in this (by now large) pytest process: a garbage
    # collection pausing its threads stamps an arrival late and bunches the next ones into one second, which
    # only the full suite's heap made happen. The senders are processes of their own and are not affected.
    gc.collect()
    gc.disable()
    request.addfinalizer(gc.enable)
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=4, rate_limit=5)) as running:
        configure(monkeypatch, {"IM_ENDPOINT": running.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY,
                                "IM_ADMIN": ADMIN, "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}",
                                "IM_RATE_LIMIT": "5", "IM_MAX_ATTEMPTS": "2", **home.env})
        forget_clients()
        yield running
    forget_clients()
    runtime.reset()


def process_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def tasks(emu: Emulator, count: int) -> list[int]:
    """Created at the API's own pace (the emulator limits add_sched_task too)."""
    made = []
    for _ in range(count):
        made.append(add_task(emu))
        time.sleep(0.21)
    emu.clear_requests()
    return made


def arrivals(emu: Emulator) -> list[float]:
    return sorted(float(r["t"]) for r in modify_requests(emu))  # type: ignore[arg-type]


def worst_window(times: list[float]) -> int:
    return max(sum(1 for u in times if t <= u < t + 1.0) for t in times)


INTERVAL_MS = round(1000 * (1 + FLEET_MARGIN) / 5)  # the fleet's slots at IM_RATE_LIMIT=5: 210 ms apart


def slots_of(done: list[subprocess.CompletedProcess[str]]) -> list[float]:
    """The send slots the fleet's budget gave the processes (their "sending" lines, logged at DEBUG), sorted: what
    the store handed out, on its own arithmetic, free of when each request happened to reach the emulator."""
    lines = [json.loads(line) for d in done for line in d.stderr.splitlines() if line.startswith("{")]
    return sorted(float(line["slot"]) for line in lines if line.get("message") == "sending")


def gaps_ms(slots: list[float]) -> list[int]:
    return [round((later - earlier) * 1000) for earlier, later in zip(slots, slots[1:], strict=False)]


def test_leases_raced_by_processes_never_overlap(home: Home) -> None:
    # Given four processes that each take one task eight times and hold it 30 ms
    racers = [subprocess.Popen([sys.executable, "-m", "tests.support.lease_racer", home.spec, "8", f"p{i}"],
                               cwd=ROOT, env=process_env(**home.env), stdout=subprocess.PIPE, text=True)
              for i in range(4)]
    results = [json.loads(racer.communicate(timeout=120)[0]) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers)
    # Then no two holds overlap, and each process got its turns
    held = sorted((start, end) for result in results for start, end in result["held"])
    assert len(held) == 32
    assert all(end <= next_start for (_, end), (next_start, _) in zip(held, held[1:], strict=False))


def test_the_order_holds_across_the_fleet(emu: Emulator, home: Home, tmp_path: Path) -> None:
    # Given an operator's change over HTTP, applied by one instance
    task = add_task(emu)
    answer = invoke_elsewhere(http_event(f"/sched-tasks/{task}", json.dumps({"Type": "All", "SchedAt": NEW})),
                              tmp_path)
    assert answer["statusCode"] == 200
    state = home.store().lease(TaskKey(APP, task), "look", 1, 0)  # an old lease: taken and gone at once
    assert state.applied["SchedAt"].by.startswith("http:")
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


def unreachable(home: Home, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point this process (and its children) at a closed port; the store's name as errors give it."""
    closed = free_port()
    if home.name == "dynamodb":
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{closed}")
        name = home.spec
    else:
        monkeypatch.setenv("IM_STATE_STORE", f"redis://127.0.0.1:{closed}/0")
        monkeypatch.setenv("IM_STATE_STORE_PASSWORD", PASSWORD)
        name = f"redis://127.0.0.1:{closed}/0"
    forget_clients()
    runtime.reset()
    return name


def test_an_unreachable_store_sends_nothing_unguarded(emu: Emulator, home: Home, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    task = add_task(emu)
    emu.clear_requests()
    name = unreachable(home, monkeypatch)
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
    assert letter["error"]["class"] == "retryable" and name in letter["error"]["info"]
    assert modify_requests(emu) == []
    logged = capsys.readouterr()
    assert PASSWORD not in logged.out + logged.err + json.dumps(letter) + json.dumps(answer)
    assert quote(PASSWORD, safe="") not in logged.out + logged.err


@pytest.mark.parametrize("home", ["redis"], indirect=True)
def test_a_redis_that_stops_and_starts_mid_run(emu: Emulator, home: Home) -> None:
    server = home.server
    first, second = tasks(emu, 2)
    assert lambda_handler({"TaskID": first, "Type": "All", "SchedAt": NEW}, LocalContext())["succeeded"] == 1
    server.stop()
    # the store is gone: the queue keeps the message, HTTP answers -6, nothing reaches the API
    message = sqs_record(json.dumps({"TaskID": second, "Type": "All", "SchedAt": NEW}))
    assert failed_ids(lambda_handler(sqs_event([message]), LocalContext())) == [message["messageId"]]
    answer = lambda_handler(http_event(f"/sched-tasks/{second}", json.dumps({"Type": "All", "SchedAt": NEW})),
                            LocalContext())
    assert answer["statusCode"] == 503 and json.loads(answer["body"])["ErrorCode"] == -6
    assert len(modify_requests(emu)) == 1
    server.start()  # back, empty: the redelivery goes through with the same client
    assert failed_ids(lambda_handler(sqs_event([message]), LocalContext())) == []
    assert len(modify_requests(emu)) == 2 and get_task(emu, second)["SchedAt"] == NEW


def send_from_processes(runs: list[tuple[list[str], Any, dict[str, str]]], tmp_path: Path,
                        ) -> list[subprocess.CompletedProcess[str]]:
    """Each (command, payload, environment) with its payload's file, all at once, each in a process of its own."""
    running = []
    for i, (command, payload, env) in enumerate(runs):
        path = tmp_path / f"payload-{i}.json"
        path.write_text(json.dumps(payload), encoding="utf-8")
        running.append(subprocess.Popen([*command, str(path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True))
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in running]


LAMBDA = [sys.executable, "-m", "timpush.cli", "invoke"]


def test_four_processes_share_one_budget_and_use_all_of_it(emu: Emulator, tmp_path: Path) -> None:
    # Given four processes with eight modifications each, every one allowed IM_RATE_LIMIT=5 for the fleet
    made = tasks(emu, 32)
    payloads = [[{"TaskID": t, "Type": "All", "SchedAt": SCHED} for t in made[i::4]] for i in range(4)]
    # When they all send at once
    env = process_env(POWERTOOLS_LOG_LEVEL="DEBUG")
    done = send_from_processes([(LAMBDA, payload, env) for payload in payloads], tmp_path)
    # Then every modification succeeded, and the slots the fleet's budget gave them were one budget: no two closer
    # than one interval (no second holds more than 5), and mostly exactly one interval apart (all of it used while
    # they asked; a process's first slot is a double one)
    assert [json.loads(d.stdout)["succeeded"] for d in done] == [8] * 4, [d.stderr[-500:] for d in done]
    slots = slots_of(done)
    assert len(slots) >= 32 and len(modify_requests(emu)) == len(slots)  # one slot for every request sent
    assert min(gaps_ms(slots)) >= INTERVAL_MS and worst_window(slots) <= 5
    assert statistics.median(gaps_ms(slots)) == INTERVAL_MS


def scf_env(env: dict[str, str]) -> dict[str, str]:
    """What an SCF process gets: the function's variables, no AWS (SCF has none), Python 3.10's own paths."""
    keep = ("IM_", "DEAD_LETTER", "PATH", "HOME")
    return {name: value for name, value in env.items() if name.startswith(keep)} | {
        "TENCENTCLOUD_RUNENV": "SCF", "NO_PROXY": "127.0.0.1,localhost", "PYTHONDONTWRITEBYTECODE": "1"}


def timer(mods: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Type": "Timer", "TriggerName": "fleet", "Time": "2026-11-30T09:00:00Z", "Message": json.dumps(mods)}


def test_scf_and_lambda_processes_share_one_redis(homes: Homes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   ) -> None:
    python310 = require_python310()
    home = homes.get("redis")
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=5, rate_limit=5)) as emu:
        env = {"IM_ENDPOINT": emu.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN,
               "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}", "IM_RATE_LIMIT": "5", **home.env}
        made = tasks(emu, 24)
        # Given two SCF processes (timer events) and two Lambda processes, six modifications each
        payloads: list[Any] = [timer([{"TaskID": t, "Type": "All", "SchedAt": SCHED} for t in made[0::4]]),
                               timer([{"TaskID": t, "Type": "All", "SchedAt": SCHED} for t in made[1::4]]),
                               [{"TaskID": t, "Type": "All", "SchedAt": SCHED} for t in made[2::4]],
                               [{"TaskID": t, "Type": "All", "SchedAt": SCHED} for t in made[3::4]]]
        scf = [python310, "-m", "timpush.cli", "invoke", "--platform", "scf", "--timeout", "60"]
        on_scf = scf_env({**os.environ, **env}) | {"POWERTOOLS_LOG_LEVEL": "DEBUG"}
        on_lambda = process_env(**env, POWERTOOLS_LOG_LEVEL="DEBUG")
        done = send_from_processes([(scf, payloads[0], on_scf), (scf, payloads[1], on_scf),
                                    (LAMBDA, payloads[2], on_lambda), (LAMBDA, payloads[3], on_lambda)], tmp_path)
        # Then one budget held for all four: every modification applied, no two slots closer than one interval
        assert [json.loads(d.stdout)["succeeded"] for d in done] == [6] * 4, [d.stderr[-800:] for d in done]
        slots = slots_of(done)
        assert len(slots) == len(modify_requests(emu)) >= 24
        assert min(gaps_ms(slots)) >= INTERVAL_MS and worst_window(slots) <= 5
        # and the order is one: an older change that an SCF process receives is superseded by the Lambda's
        stale = timer([{"TaskID": made[2], "Type": "All", "SchedAt": OLD, "IssuedAt": "2026-01-01T00:00:00Z"}])
        [late] = send_from_processes([(scf, stale, on_scf)], tmp_path)
        assert json.loads(late.stdout)["superseded"] == 1, late.stderr[-800:]
        assert len(modify_requests(emu)) == len(slots) and get_task(emu, made[2])["SchedAt"] == SCHED


def test_an_unreachable_store_falls_back_to_the_fallback_rate(emu: Emulator, home: Home,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    name = unreachable(home, monkeypatch)
    # The handler would not send at all without the store (the task order lives there too: -6), so the
    # pacing is run on its own, in a process of its own, with the store's endpoint closed
    code = ("import json,sys,time; from handler import config; from handler.state.homes import open_pacing; "
            "from handler.observability import metrics; s = config.load(); "
            "p = open_pacing(s.state_store, 5, 2, 'modify_sched_task')(1400000001); "
            "sent = [p.acquire(time.monotonic() + 30) for _ in range(6)]; metrics.flush_metrics(); "
            "print(json.dumps(sent))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=process_env(), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-1000:]
    sent = json.loads(done.stdout.splitlines()[-1])
    assert worst_window(sent) <= 2 and sent[-1] - sent[0] >= 2.0  # six at 2/s: at least two seconds
    assert "rate store unreachable" in done.stderr and f'"store":"{name}"' in done.stderr
    assert '"RateStoreUnavailable":[1.0]' in done.stdout  # the EMF document, counted once
    assert PASSWORD not in done.stdout + done.stderr and quote(PASSWORD, safe="") not in done.stdout + done.stderr
    assert modify_requests(emu) == []


def test_a_60007_pauses_the_whole_fleet(emu: Emulator, home: Home, caplog: pytest.LogCaptureFixture) -> None:
    [task] = tasks(emu, 1)
    emu.add_faults([Fault(kind="rate_limit", count=1, api="modify")])
    caplog.set_level(logging.DEBUG, logger="timpush-modifier")  # the "sending" lines, with their send slots
    result = lambda_handler({"TaskID": task, "Type": "All", "SchedAt": SCHED}, LocalContext())
    assert result["succeeded"] == 1 and len(modify_requests(emu)) == 2
    first, second = (float(r.slot) for r in caplog.records if r.getMessage() == "sending")  # type: ignore[attr-defined]
    # the retry's slot came after the pause, and the pause is in the store for every other process
    assert second - first >= RATE_LIMIT_PAUSE
    other = home.slots()  # another process: the slot it can take now is after the pause
    slot, _ = other.reserve(PK, round(first * 1000) + 500, 210, 1_000, None)
    assert slot / 1000 >= first + RATE_LIMIT_PAUSE


def test_a_slot_past_the_deadline_is_not_waited_for(emu: Emulator, home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    [task] = tasks(emu, 1)
    slept: list[float] = []
    monkeypatch.setattr(rate, "FleetLimiter", functools.partial(rate.FleetLimiter, sleep=slept.append))
    runtime.reset()
    home.slots().hold(PK, round(time.time() * 1000) + 20_000)  # the budget is spoken for 20 s
    body = json.dumps({"Type": "All", "SchedAt": SCHED})
    answer = lambda_handler(http_event(f"/sched-tasks/{task}", body), LocalContext(timeout_seconds=10))
    assert answer["statusCode"] == 429 and answer["headers"]["Retry-After"] == "1"
    assert json.loads(answer["body"])["ErrorCode"] == 60007
    message = sqs_record(json.dumps({"TaskID": task, "Type": "All", "SchedAt": SCHED}))
    assert failed_ids(lambda_handler(sqs_event([message]), LocalContext(timeout_seconds=10))) == [message["messageId"]]
    assert slept == []  # neither waited for a slot it could not use
    assert modify_requests(emu) == []


@pytest.mark.parametrize("home", ["redis"], indirect=True)
def test_a_password_protected_redis_from_the_handler(emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    [task] = tasks(emu, 1)
    with redis_server(password=PASSWORD) as server:
        monkeypatch.setenv("IM_STATE_STORE", f"redis://127.0.0.1:{server.port}")
        monkeypatch.setenv("IM_STATE_STORE_PASSWORD", PASSWORD)
        forget_clients()
        runtime.reset()
        assert lambda_handler({"TaskID": task, "Type": "All", "SchedAt": NEW}, LocalContext())["succeeded"] == 1
        assert server.client().hget(TaskKey(APP, task).pk, "sched_at_by")  # the order is in that Redis
        assert PASSWORD not in repr(runtime.runtime())
    forget_clients()
    logged = capsys.readouterr()
    assert PASSWORD not in logged.out + logged.err and quote(PASSWORD, safe="") not in logged.out + logged.err
