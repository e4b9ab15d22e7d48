"""Every sample in events/ through `timpush invoke`, against the emulator holding the tasks they name.

The world is the demo's: five tasks from 1234567890, the fourth already dispatched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handler import runtime
from handler.deadletter.record import Source, record
from handler.im.codes import Origin, classify
from handler.outcome import Outcome, Status
from tests.fakes.moto_sqs import MotoSqs
from tests.support.im import ADMIN, APP, KEY, dead_letters, modify_requests
from timpush import cli
from timpush.demo import EVENTS, create_tasks
from timpush.emulator import Emulator, EmulatorSettings, Fault

T0, T1, T2, T3, T4 = range(1234567890, 1234567895)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    settings = EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=0, first_task_id=T0)
    with Emulator(settings) as emu:
        create_tasks(emu, say=lambda _text: None)
        emu.clear_requests()
        env = {"IM_ENDPOINT": emu.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN,
               "DEAD_LETTER": f"file:{tmp_path / 'dl.jsonl'}", "IM_RATE_LIMIT": "5"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        for name in ("IM_SECRET_SOURCE", "DEAD_LETTER_ROUTES", "WORK_QUEUE", "IM_MAX_ATTEMPTS", "IM_REGION"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr("handler.im.retry.BACKOFF_BASE", 0.01)
        runtime.reset()
        yield emu
        runtime.reset()


def invoke(name: str, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    assert cli.main(["invoke", str(EVENTS / f"{name}.json")]) == 0
    out = capsys.readouterr().out
    return json.loads(out)  # stdout holds exactly one JSON document: the return value


def letters(tmp_path: Path) -> list[dict[str, Any]]:
    return dead_letters(tmp_path / "dl.jsonl")


def failures(result: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"].split("-")[1] for f in result["batchItemFailures"]]


def http_body(result: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(result["body"])
    return body


def test_every_sample_is_covered_here() -> None:
    tested = {name for name in globals() if name.startswith("test_")}
    for path in EVENTS.glob("*.json"):
        assert f"test_{path.stem.replace('-', '_')}" in tested, path.name


def test_direct(world: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = invoke("direct", capsys)
    assert (result["succeeded"], result["dead_lettered"]) == (2, 0)
    assert letters(tmp_path) == []


def test_direct_failing(world: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = invoke("direct-failing", capsys)
    assert [r["ErrorCode"] for r in result["results"]] == [90104, 90106]
    assert [(d["error"]["class"], d["error"]["origin"]) for d in letters(tmp_path)] == [
        ("invalid", "local"), ("too_late", "remote")]
    assert "SchedAT" in letters(tmp_path)[0]["error"]["info"]


def test_schedule_input(world: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke("schedule-input", capsys)["succeeded"] == 1
    [request] = modify_requests(world)
    assert request["body"]["SchedAt"] == "2031-08-01 09:00:00"  # type: ignore[index]


def test_schedule_input_failing(world: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = invoke("schedule-input-failing", capsys)
    assert result["results"][0]["ErrorCode"] == 90104
    assert letters(tmp_path)[0]["error"]["origin"] == "remote"  # the type mismatch is the server's to find


def test_eventbridge_scheduled(world: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = invoke("eventbridge-scheduled", capsys)
    assert result == {"redriven": 0, "kept": 0, "kept_at_limit": 0}  # no WORK_QUEUE locally: the job idles
    assert letters(tmp_path) == [] and modify_requests(world) == []


def test_eventbridge_scheduled_redrives_a_retryable_dead_letter(
        world: Emulator, sqs_env: MotoSqs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the queues the maintenance job works between, and a retryable dead letter beside one that is not
    dlq, work = sqs_env.create_queue("retryable-dlq"), sqs_env.create_queue("work")
    monkeypatch.setenv("DEAD_LETTER_ROUTES", json.dumps({"retryable": f"sqs:{dlq}", "too_late": f"sqs:{dlq}"}))
    monkeypatch.setenv("WORK_QUEUE", f"sqs:{work}")
    runtime.reset()
    raw = json.dumps({"TaskID": T1, "Type": "Tag", "SchedAt": "2031-07-05 08:00:00"})
    for code in (-1, 90106):
        outcome = Outcome(Status.FAILED, raw, json.loads(raw), code, "failed", classify(code), Origin.REMOTE, 1)
        runtime.runtime().dead_letters.send([record(outcome, Source("sqs", f"m{code}"))])
    # When the schedule's sample event runs the handler
    result = invoke("eventbridge-scheduled", capsys)
    # Then the retryable one is back on the work queue, its body as it was, counted; the other stays
    assert result == {"redriven": 1, "kept": 1, "kept_at_limit": 0}
    [message] = sqs_env.drain(work)
    assert message["Body"] == raw and message["MessageAttributes"]["Redrives"]["StringValue"] == "1"
    [left] = sqs_env.drain(dlq)
    assert json.loads(left["Body"])["error"]["code"] == 90106
    assert modify_requests(world) == []  # on Lambda the job only moves messages; the worker applies them


def test_eventbridge_scheduled_failing(world: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # An EventBridge event that is not a schedule is not dropped: it is refused and kept
    result = invoke("eventbridge-scheduled-failing", capsys)
    assert result["dead_lettered"] == 1
    [letter] = letters(tmp_path)
    assert json.loads(letter["raw"])["detail-type"] == "Object Created"


def test_sqs_standard(world: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert invoke("sqs-standard", capsys) == {"batchItemFailures": []}
    assert len(modify_requests(world)) == 2 and letters(tmp_path) == []


def test_sqs_standard_failing(world: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given: retryable on delivery 1, retryable on its last delivery, success, malformed, past time
    world.add_faults([Fault(kind="internal_error", count=8, api="modify")])
    result = invoke("sqs-standard-failing", capsys)
    # Then only the retryable one with deliveries left comes back
    assert failures(result) == ["0011"]
    by_code = {d["error"]["code"]: d for d in letters(tmp_path)}
    assert sorted(by_code) == [90104, 90105, 90110]
    assert by_code[90105]["source"]["receive_count"] == 5 and by_code[90105]["attempts"] == 4
    assert by_code[90104]["raw"] == '{"TaskID": 1234567890, "Type": "All", "SchedAt": '
    assert by_code[90104]["request"] is None
    sample = json.loads((EVENTS / "sqs-standard-failing.json").read_text())
    assert by_code[90110]["raw"] == sample["Records"][4]["body"]


def test_sqs_fifo(world: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke("sqs-fifo", capsys) == {"batchItemFailures": []}
    bodies = [r["body"] for r in modify_requests(world)]
    assert [b["TaskID"] for b in bodies] == [T0, T0, T2]  # type: ignore[index]


def test_sqs_fifo_failing(world: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given the first message of group T4 meets a failing server
    world.add_faults([Fault(kind="internal_error", count=4, api="modify")])
    result = invoke("sqs-fifo-failing", capsys)
    # Then the rest of its group is held back unsent, and the other group runs
    assert failures(result) == ["0031", "0032"]
    sent = [r["body"]["TaskID"] for r in modify_requests(world)]  # type: ignore[index]
    assert sent == [T4] * 4 + [T1]
    assert letters(tmp_path) == []


def test_sqs_sns(world: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke("sqs-sns", capsys) == {"batchItemFailures": []}
    # the modification inside the SNS notification, and only it, went to the API as it was written
    sample = json.loads((EVENTS / "sqs-sns.json").read_text())
    inner = [json.loads(json.loads(r["body"])["Message"]) for r in sample["Records"]]
    assert [r["body"] for r in modify_requests(world)] == [{"Sdkappid": APP, **m} for m in inner]
    assert [m["TaskID"] for m in inner] == [T1]


def test_sqs_sns_failing(world: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert invoke("sqs-sns-failing", capsys) == {"batchItemFailures": []}
    [letter] = letters(tmp_path)
    assert letter["error"]["code"] == 90104 and "Type" in letter["error"]["info"]
    assert json.loads(letter["raw"])["Type"] == "Notification"  # the SQS body exactly as delivered


@pytest.mark.parametrize("name", ["http-api-v2", "rest-api-v1", "function-url"])
def test_http_success(world: Emulator, capsys: pytest.CaptureFixture[str], name: str) -> None:
    result = invoke(name, capsys)
    assert result["statusCode"] == 200
    body = http_body(result)
    assert (body["ActionStatus"], body["ErrorCode"]) == ("OK", 0)
    assert body["TaskID"] == modify_requests(world)[0]["body"]["TaskID"]  # type: ignore[index]


def test_http_api_v2(world: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke("http-api-v2", capsys)
    # the path's TaskID, the ISO time with its Z converted to the API's UTC form
    assert [r["body"] for r in modify_requests(world)] == [
        {"Sdkappid": APP, "TaskID": T0, "Type": "All", "SchedAt": "2031-09-01 10:00:00"}]
    assert (result["statusCode"], http_body(result)) == (
        200, {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "TaskID": T0})


def test_rest_api_v1(world: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke("rest-api-v1", capsys)
    content = {"To_Account": ["erin"], "OfflinePushInfo": {"Title": "Just for you", "Desc": "Personal"}}
    assert [r["body"] for r in modify_requests(world)] == [
        {"Sdkappid": APP, "TaskID": T2, "Type": "User", "Content": content}]
    assert (result["statusCode"], http_body(result)["TaskID"]) == (200, T2)


def test_function_url(world: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke("function-url", capsys)
    content = {"OfflinePushInfo": {"Title": "From a URL", "Desc": "Signed by IAM"}}
    assert [r["body"] for r in modify_requests(world)] == [
        {"Sdkappid": APP, "TaskID": T1, "Type": "Tag", "Content": content}]
    assert (result["statusCode"], http_body(result)["TaskID"]) == (200, T1)


def test_http_api_v2_failing(world: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = invoke("http-api-v2-failing", capsys)
    assert result["statusCode"] == 409
    assert http_body(result) == {"ActionStatus": "FAIL", "ErrorCode": 90106, "TaskID": T3,
                                 "ErrorInfo": "modify failed: task dispatched"}  # the server's own words
    assert letters(tmp_path) == []  # HTTP failures are answered, not dead-lettered


def test_rest_api_v1_failing(world: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke("rest-api-v1-failing", capsys)
    assert result["statusCode"] == 400
    assert http_body(result)["errors"][0]["field"] == "body"
    assert modify_requests(world) == []


def test_function_url_failing(world: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke("function-url-failing", capsys)
    assert result["statusCode"] == 400
    assert http_body(result)["errors"][0]["field"] == "TaskID"
    assert modify_requests(world) == []
