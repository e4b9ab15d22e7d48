"""Several IM apps in one deployment (DESIGN IM_APPS), over real HTTP: each app on its own emulator.

Each emulator serves one app with its own key and checks every UserSig, so a request signed with the
wrong app's key, or sent to the wrong app's domain, fails there with the server's own code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handler import config, lambda_handler
from handler.apps import registry_for
from handler.aws.entry import deadline, route
from handler.config import ConfigError
from handler.deadletter import DeadLetters
from handler.im.ratelimit import RateLimiter
from handler.runtime import Runtime
from handler.service import Modifier
from handler.state import dynamodb as dynamo_store
from tests.fakes.moto_dynamodb import moto_dynamodb
from tests.support.im import APP, KEY, add_task, dead_letters, modify_requests
from tests.support.lambda_events import configure, failed_ids, http_event, sqs_event, sqs_record
from timpush.context import LocalContext
from timpush.emulator import Emulator, EmulatorSettings, Fault

pytestmark = pytest.mark.integration

APP_A, KEY_A = APP, KEY
APP_B, KEY_B, ADMIN_B = 1400000002, "tp-test-key-b-2c4e6a8b0d1f3e5a7c9b", "ops"
UNKNOWN = 1400000009
SCHED = "2031-07-01 10:00:00"


@pytest.fixture
def two_apps() -> Iterator[tuple[Emulator, Emulator]]:
    """App A and app B, each on its own emulator with its own key (B also with its own admin)."""
    with Emulator(EmulatorSettings(sdkappid=APP_A, key=KEY_A, rate_limit=0, first_task_id=1_000_000_001)) as a, \
         Emulator(EmulatorSettings(sdkappid=APP_B, key=KEY_B, admins=(ADMIN_B,), rate_limit=0,
                                   first_task_id=2_000_000_001)) as b:
        yield a, b


def apps_json(a: Emulator, b: Emulator) -> str:
    return json.dumps([{"SDKAppID": APP_A, "Key": KEY_A, "Endpoint": a.url},
                       {"SDKAppID": APP_B, "Key": KEY_B, "Admin": ADMIN_B, "Endpoint": b.url}])


def tasks(a: Emulator, b: Emulator) -> tuple[int, int]:
    return add_task(a), add_task(b, app=APP_B, key=KEY_B, admin=ADMIN_B)


def mod(task: int, sdkappid: int | None, sched: str = SCHED) -> dict[str, Any]:
    doc: dict[str, Any] = {"TaskID": task, "Type": "All", "SchedAt": sched}
    if sdkappid is not None:
        doc["Sdkappid"] = sdkappid
    return doc


def sent(emu: Emulator) -> list[tuple[str, str, int | None, object]]:
    """What an app's emulator received: (sdkappid of the URL, identifier, code it answered, TaskID)."""
    return [(str(r["query"]["sdkappid"]), str(r["query"]["identifier"]), r["code"],  # type: ignore[index]
             r["body"]["TaskID"]) for r in modify_requests(emu)]  # type: ignore[index]


def use(a: Emulator, b: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Path:
    dead = tmp_path / "dead.jsonl"
    configure(monkeypatch, {"IM_APPS": apps_json(a, b), "DEAD_LETTER": f"file:{dead}", "IM_RATE_LIMIT": "0", **env})
    return dead


def invoke(event: Any) -> Any:
    return lambda_handler(event, LocalContext(timeout_seconds=30))


def test_a_batch_mixing_both_apps_and_an_unknown_one(two_apps: tuple[Emulator, Emulator], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    # Given two apps, each with a task on its own emulator
    a, b = two_apps
    task_a, task_b = tasks(a, b)
    dead = use(a, b, tmp_path, monkeypatch)
    caplog.set_level(logging.INFO)
    # When one queue batch carries a modification for each, one for an app not configured, and one naming none
    bodies = [json.dumps(mod(task_a, APP_A)), json.dumps(mod(task_b, APP_B)), json.dumps(mod(task_a, UNKNOWN)),
              json.dumps(mod(task_b, None))]
    records = [sqs_record(body) for body in bodies]
    assert failed_ids(invoke(sqs_event(records))) == []
    # Then each app's modification went to its own domain, signed by its own admin with its own key
    assert sent(a) == [(str(APP_A), "administrator", 0, task_a)]
    assert sent(b) == [(str(APP_B), ADMIN_B, 0, task_b)]
    assert a.tasks()[0]["SchedAt"] == SCHED and b.tasks()[0]["SchedAt"] == SCHED
    # And the other two were refused locally with 90104 naming Sdkappid, dead-lettered with their exact bodies
    letters = {d["source"]["id"]: d for d in dead_letters(dead)}
    assert set(letters) == {records[2]["messageId"], records[3]["messageId"]}
    unknown, missing = letters[records[2]["messageId"]], letters[records[3]["messageId"]]
    assert (unknown["error"]["code"], unknown["error"]["class"], unknown["error"]["origin"]) == (
        90104, "invalid", "local")
    assert unknown["error"]["info"] == ("Sdkappid: 1400000009 is not an app this deployment serves "
                                        "(1400000001, 1400000002)")
    assert missing["error"]["info"] == ("Sdkappid: required: this deployment serves several apps "
                                        "(1400000001, 1400000002)")
    assert (unknown["raw"], missing["raw"]) == (bodies[2], bodies[3])
    assert unknown["request"]["Sdkappid"] == UNKNOWN and "sdkappid" not in missing
    # And every outcome's log line says which app it was for
    lines = {r.source["id"]: r for r in caplog.records if hasattr(r, "outcome")}  # type: ignore[attr-defined]
    assert [getattr(lines[r["messageId"]], "sdkappid", "absent") for r in records] == [APP_A, APP_B, None, None]


def emf(text: str) -> list[dict[str, Any]]:
    """The EMF documents powertools printed (one JSON object a line)."""
    return [doc for doc in (json.loads(line) for line in text.splitlines() if line.startswith("{")) if "_aws" in doc]


def test_one_payload_for_both_apps_and_http_taking_the_app_from_the_body(
        two_apps: tuple[Emulator, Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    a, b = two_apps
    task_a, task_b = tasks(a, b)
    dead = use(a, b, tmp_path, monkeypatch)
    capsys.readouterr()
    # A direct payload carrying both apps' modifications, and a failure dead-lettered naming its app
    result = invoke([mod(task_a, APP_A), mod(task_b, APP_B), mod(999, APP_B)])
    assert [(r["TaskID"], r["ErrorCode"]) for r in result["results"]] == [(task_a, 0), (task_b, 0), (999, 90104)]
    [letter] = dead_letters(dead)
    assert letter["sdkappid"] == APP_B and letter["request"]["TaskID"] == 999
    # The failure is counted once more with an sdkappid dimension, in a metric of its own
    docs = emf(capsys.readouterr().out)
    per_app = [d for d in docs if "sdkappid" in d]
    assert [(d["sdkappid"], d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]) for d in per_app] == [
        (str(APP_B), "Failed_invalid")]
    batch = [d for d in docs if "ModificationsSucceeded" in d]
    assert len(batch) == 1 and "sdkappid" not in batch[0]  # the batch's own counts are not split by app
    # HTTP: the app comes from the body; without it, 400 naming Sdkappid
    body = json.dumps({"Type": "All", "SchedAt": "2031-07-02 10:00:00", "Sdkappid": APP_B})
    ok = invoke(http_event(f"/sched-tasks/{task_b}", body))
    assert ok["statusCode"] == 200 and b.tasks()[0]["SchedAt"] == "2031-07-02 10:00:00"
    refused = invoke(http_event(f"/sched-tasks/{task_b}", json.dumps({"Type": "All", "SchedAt": SCHED})))
    answer = json.loads(refused["body"])
    assert refused["statusCode"] == 400 and answer["ErrorCode"] == 90104
    assert [e["field"] for e in answer["errors"]] == ["Sdkappid"]
    assert len(dead_letters(dead)) == 1  # HTTP answers, it does not dead-letter


def test_one_app_rate_limited_while_the_other_flows(two_apps: tuple[Emulator, Emulator], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Given app A's server answering 60007 twice, and each app's limiter recording the waits it asks for
    a, b = two_apps
    task_a, task_b = tasks(a, b)
    a.add_faults([Fault("rate_limit", count=2, api="modify")])
    use(a, b, tmp_path, monkeypatch, IM_RATE_LIMIT="5", IM_MAX_ATTEMPTS="4")
    waits: dict[int, list[float]] = {APP_A: [], APP_B: []}
    settings = config.settings()
    # The waits are recorded rather than slept, so A's pause is still in force when B's turn comes
    apps = registry_for(settings, lambda sdkappid: RateLimiter(settings.rate_limit, sleep=waits[sdkappid].append))
    rt = Runtime(settings, Modifier(settings, apps, sleep=lambda _seconds: None), DeadLetters.from_settings(settings))
    # When a payload carries A's modification first, then three of B's (three tasks)
    more_b = [add_task(b, app=APP_B, key=KEY_B, admin=ADMIN_B) for _ in range(2)]
    result = route([mod(task_a, APP_A)] + [mod(task, APP_B) for task in (task_b, *more_b)],
                   LocalContext(), rt, deadline(LocalContext(timeout_seconds=30)))
    # Then A was paused after each 60007 and got through on its third attempt
    assert [r["ErrorCode"] for r in result["results"]] == [0, 0, 0, 0]
    assert [code for _, _, code, _ in sent(a)] == [60007, 60007, 0]
    assert len(waits[APP_A]) == 2 and min(waits[APP_A]) > 0.5
    # And B, paced by its own limiter, never waited for A's pause
    assert [code for _, _, code, _ in sent(b)] == [0, 0, 0]
    assert waits[APP_B] == []


def test_bad_im_apps_fails_the_cold_start_naming_the_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    apps = [{"SDKAppID": APP_A, "Key": KEY_A}, {"SDKAppID": APP_B, "Key": KEY_B, "Region": "atlantis"}]
    configure(monkeypatch, {"IM_APPS": json.dumps(apps), "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}"})
    with pytest.raises(ConfigError) as caught:
        invoke(mod(1, APP_A))
    assert str(caught.value).startswith("IM_APPS[1] (SDKAppID 1400000002): unknown \"Region\" 'atlantis'")
    assert KEY_B not in str(caught.value)


def test_one_apps_refused_key_fails_only_that_app_and_no_key_leaks(
        two_apps: tuple[Emulator, Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    # Given app B configured with a key its server does not accept
    a, b = two_apps
    task_a, task_b = tasks(a, b)
    wrong = "tp-test-wrong-key-b-5e4d3c2b1a09"
    apps = [{"SDKAppID": APP_A, "Key": KEY_A, "Endpoint": a.url},
            {"SDKAppID": APP_B, "Key": wrong, "Admin": ADMIN_B, "Endpoint": b.url}]
    dead = tmp_path / "dead.jsonl"
    configure(monkeypatch, {"IM_APPS": json.dumps(apps), "DEAD_LETTER": f"file:{dead}", "IM_RATE_LIMIT": "0"})
    caplog.set_level(logging.DEBUG)
    # When a batch interleaves both apps
    records = [sqs_record(json.dumps(mod(task, app, f"2031-07-01 10:0{i}:00")))
               for i, (task, app) in enumerate([(task_b, APP_B), (task_a, APP_A), (task_b, APP_B), (task_a, APP_A)])]
    assert failed_ids(invoke(sqs_event(records))) == []
    # Then B's fail as auth after one fresh signature each (70009 twice), and A's all apply first time
    assert [code for _, _, code, _ in sent(b)] == [70009] * 4
    assert [code for _, _, code, _ in sent(a)] == [0, 0]
    letters = dead_letters(dead)
    assert [(d["sdkappid"], d["error"]["code"], d["error"]["class"]) for d in letters] == [(APP_B, 70009, "auth")] * 2
    # And no key reached a log line, a metric, a dead letter
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records) + dead.read_text() + str(capsys.readouterr())
    for key in (KEY_A, KEY_B, wrong):
        assert key not in text


def test_the_same_task_id_in_two_apps_is_ordered_as_two_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given both apps holding a task with the same TaskID
    with Emulator(EmulatorSettings(sdkappid=APP_A, key=KEY_A, rate_limit=0, first_task_id=7_000_000_001)) as a, \
         Emulator(EmulatorSettings(sdkappid=APP_B, key=KEY_B, admins=(ADMIN_B,), rate_limit=0,
                                   first_task_id=7_000_000_001)) as b:
        task_a, task_b = tasks(a, b)
        assert task_a == task_b
        use(a, b, tmp_path, monkeypatch)
        now = datetime.now(UTC)
        newer, older = (now - timedelta(minutes=1)).isoformat(), (now - timedelta(minutes=2)).isoformat()
        # When app A's task gets a newer change, then app B's an older one, then one payload changes both
        first = invoke([{**mod(task_a, APP_A, "2031-07-01 10:01:00"), "IssuedAt": newer}])
        second = invoke([{**mod(task_b, APP_B, "2031-07-01 10:02:00"), "IssuedAt": older}])
        both = invoke([mod(task_a, APP_A, "2031-07-01 10:03:00"), mod(task_b, APP_B, "2031-07-01 10:04:00")])
        # Then nothing was superseded: each app's task has its own order
        assert [r["ErrorCode"] for r in first["results"] + second["results"] + both["results"]] == [0, 0, 0, 0]
        assert (a.tasks()[0]["SchedAt"], b.tasks()[0]["SchedAt"]) == ("2031-07-01 10:03:00", "2031-07-01 10:04:00")


def test_with_the_fleet_store_each_app_has_its_own_budget_and_order_items(
        two_apps: tuple[Emulator, Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the fleet's state in DynamoDB (moto), and app A's server answering 60007 once
    a, b = two_apps
    task_a, task_b = tasks(a, b)
    a.add_faults([Fault("rate_limit", count=1, api="modify")])
    with moto_dynamodb() as dynamo:
        dynamo_store.forget_client()
        try:
            use(a, b, tmp_path, monkeypatch, IM_RATE_LIMIT="5", **dynamo.env)
            # When one payload carries a modification for each app
            result = invoke([mod(task_a, APP_A), mod(task_b, APP_B)])
            items = {item["pk"]["S"]: item for item in dynamo.client().scan(TableName=dynamo.table)["Items"]}
        finally:
            dynamo_store.forget_client()
    # Then both applied, A after its pause; each app's rate budget and each app's task are items of their own
    assert [r["ErrorCode"] for r in result["results"]] == [0, 0]
    assert [code for _, _, code, _ in sent(a)] == [60007, 0] and [code for _, _, code, _ in sent(b)] == [0]
    rate_items = sorted(pk for pk in items if pk.startswith("rate#"))
    assert rate_items == [f"rate#{APP_A}#modify_sched_task", f"rate#{APP_B}#modify_sched_task"]
    assert sorted(pk for pk in items if pk.startswith("task#")) == [f"task#{APP_A}#{task_a}", f"task#{APP_B}#{task_b}"]
