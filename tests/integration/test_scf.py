"""Every SCF event shape through ``handler.main_handler`` on Python 3.10, against the emulator on loopback.

Each invocation runs in SCF's interpreter (tests/support/scf.py); the emulator holds the tasks the
samples in events/scf/ name (the demo's five, the fourth already dispatched).
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.redis_server import redis_server
from tests.support.im import ADMIN, APP, KEY, dead_letters, get_task
from tests.support.scf import SCF_EVENTS, Invocation, invoke, require_python310, run_python310, sample
from timpush import bundle
from timpush.demo import create_tasks
from timpush.emulator import Emulator, EmulatorSettings, Fault
from timpush.emulator.settings import SAMPLE_FIRST_TASK_ID

SPRING, VIP, ORDER, DISPATCHED, DIGEST = range(SAMPLE_FIRST_TASK_ID, SAMPLE_FIRST_TASK_ID + 5)


@pytest.fixture
def tasks() -> Iterator[Emulator]:
    """The emulator with the samples' tasks; the 3.10 interpreter checked first (no server for a skip)."""
    require_python310()
    settings = EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=3, first_task_id=SAMPLE_FIRST_TASK_ID)
    with Emulator(settings) as emu:
        create_tasks(emu, say=lambda _text: None)
        yield emu


@pytest.fixture
def dead(tmp_path: Path) -> Path:
    return tmp_path / "dead-letters.jsonl"


@pytest.fixture
def env(tasks: Emulator, dead: Path) -> dict[str, str]:
    return {"IM_ENDPOINT": tasks.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN,
            "DEAD_LETTER": f"file:{dead}", "IM_RATE_LIMIT": "5"}


def summary_codes(run: Invocation) -> list[int]:
    assert run.returncode == 0, run.stderr[-2000:]
    return [r["ErrorCode"] for r in run.result["results"]]


# sample -> (ErrorCode per modification, in order) for the queue and timer shapes
QUEUED = {
    "timer": [0], "timer-failing": [90104],
    "ckafka": [0, 0], "ckafka-failing": [90104, 90106],
    "cmq-topic": [0], "cmq-topic-failing": [90110],
    "tdmq": [0], "tdmq-failing": [90104],
    "eventbridge-batch": [0, 0], "eventbridge-batch-failing": [90104, 90106],
}


def message_bodies(event: dict[str, Any]) -> list[str]:
    """The payload text of each message of a sample, as the dead letter must keep it."""
    if event.get("Type") == "Timer":
        return [event["Message"]]
    if "data" in event:
        return [event["data"]["msgBody"]]
    if "EventList" in event:
        return [each["data"]["msgBody"] for each in event["EventList"]]
    return [next(iter(record.values()))["msgBody"] for record in event["Records"]]


@pytest.mark.parametrize("name", sorted(QUEUED))
def test_queue_and_timer_samples_finish_every_message(name: str, env: dict[str, str], dead: Path) -> None:
    event = sample(name)
    run = invoke(event, env)
    codes = summary_codes(run)
    assert codes == QUEUED[name]
    assert run.result["succeeded"] == codes.count(0) and run.result["dead_lettered"] == len(codes) - codes.count(0)
    # Every failure is dead-lettered with its code, its body exactly as the message carried it, source scf.
    failed = [body for body, code in zip(message_bodies(event), codes, strict=True) if code]
    got = dead_letters(dead)
    assert [d["error"]["code"] for d in got] == [c for c in codes if c]
    assert [d["raw"] for d in got] == failed
    assert all(d["source"]["kind"] == "scf" and d["source"]["id"] for d in got)
    # One log line per outcome naming the source, with the counts as log fields and no EMF document.
    lines = run.outcomes()
    assert [line["error_code"] for line in lines] == codes
    assert all(line["source"]["kind"] == "scf" and "metrics" in line for line in lines)
    assert "_aws" not in run.stderr


@pytest.mark.parametrize(("name", "issued"), [
    ("cmq-topic-failing", "2026-11-30T08:00:00.250Z"),  # publishTime
    ("tdmq-failing", "2025-11-30T08:00:00.000Z"),  # time, epoch milliseconds
    ("timer-failing", "2026-11-30T09:00:00.000Z"),  # the trigger's Time
    ("eventbridge-batch-failing", "2025-11-30T08:00:01.000Z"),  # each event's time (the first here)
])
def test_the_issue_time_comes_from_the_event(name: str, issued: str, env: dict[str, str], dead: Path) -> None:
    assert summary_codes(invoke(sample(name), env)) != [0]
    letter = dead_letters(dead)[0]
    assert letter["issued_at"] == issued


def test_ckafka_messages_are_issued_when_received(env: dict[str, str], dead: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    invoke(sample("ckafka-failing"), env)
    issued = {d["issued_at"] for d in dead_letters(dead)}
    assert len(issued) == 1  # one receipt time for the batch
    assert before <= datetime.fromisoformat(issued.pop().replace("Z", "+00:00")) <= datetime.now(UTC)


def test_timer_moves_the_task_it_names(env: dict[str, str], tasks: Emulator) -> None:
    run = invoke(sample("timer"), env)
    assert summary_codes(run) == [0]
    assert _sched_at(tasks, SPRING) == json.loads(sample("timer")["Message"])["SchedAt"]


def test_timer_without_a_message_does_nothing(env: dict[str, str], tasks: Emulator, dead: Path) -> None:
    run = invoke({**sample("timer"), "Message": ""}, env)
    assert run.result == {"succeeded": 0, "superseded": 0, "dead_lettered": 0, "results": []}
    assert not [r for r in tasks.requests() if str(r.get("api", "")).endswith("modify_sched_task")]
    assert not dead.exists()


@pytest.mark.parametrize(("name", "status", "code"), [("apigw", 200, 0), ("apigw-failing", 409, 90106)])
def test_api_gateway_answers_like_the_aws_http_trigger(name: str, status: int, code: int, env: dict[str, str],
                                                       dead: Path) -> None:
    event = sample(name)
    run = invoke(event, env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert set(run.result) == {"isBase64Encoded", "statusCode", "headers", "body"}
    assert run.result["isBase64Encoded"] is False and run.result["statusCode"] == status
    assert run.result["headers"]["Content-Type"] == "application/json"
    body = json.loads(run.result["body"])
    assert body["ErrorCode"] == code and body["TaskID"] == int(event["pathParameters"]["taskId"])
    assert body["ActionStatus"] == ("OK" if status == 200 else "FAIL")
    assert not dead.exists()  # HTTP failures are answered: the caller owns its retry
    assert [line["source"]["kind"] for line in run.outcomes()] == ["scf"]


@pytest.mark.parametrize(("name", "status", "code", "task"), [
    ("function-url", 200, 0, VIP), ("function-url-failing", 409, 90106, DISPATCHED)])
def test_a_function_url_request_answers_like_the_aws_http_trigger(name: str, status: int, code: int, task: int,
                                                                  env: dict[str, str], tasks: Emulator,
                                                                  dead: Path) -> None:
    # Given a Function URL request (no requestContext) for PATCH /sched-tasks/{taskId}
    run = invoke(sample(name), env)
    # Then the answer is the Function URL's {statusCode, headers, body} with the AWS route's status and envelope
    assert run.returncode == 0, run.stderr[-2000:]
    assert set(run.result) == {"statusCode", "headers", "body"} and run.result["statusCode"] == status
    body = json.loads(run.result["body"])
    assert (body["ErrorCode"], body["TaskID"]) == (code, task)
    assert not dead.exists()  # answered, not dead-lettered
    (line,) = run.outcomes()
    assert line["source"]["kind"] == "scf" and line["source"]["id"]  # the invocation's request id
    if status == 200:
        assert get_task(tasks, VIP)["Content"]["OfflinePushInfo"]["Desc"] == "Now at 10:00"


def test_a_function_url_rate_limit_is_429_with_retry_after(env: dict[str, str], tasks: Emulator) -> None:
    tasks.add_faults([Fault(kind="rate_limit", count=20, api="modify")])
    run = invoke(sample("function-url"), {**env, "IM_MAX_ATTEMPTS": "1"})
    assert run.result["statusCode"] == 429 and run.result["headers"]["Retry-After"] == "1"
    assert json.loads(run.result["body"])["ErrorCode"] == 60007


def test_an_eventbridge_batch_event_without_data_is_dead_lettered_not_dropped(env: dict[str, str],
                                                                               dead: Path) -> None:
    event = sample("eventbridge-batch")
    event["EventList"].append({"specversion": "1.0", "id": "x", "type": "other"})
    assert summary_codes(invoke(event, env)) == [0, 0, 90104]
    (letter,) = dead_letters(dead)
    assert "EventList[2].data.msgBody" in letter["error"]["info"] and json.loads(letter["raw"])["id"] == "x"


def test_ckafka_batch_mixing_success_invalid_too_late_and_retryable_spent(
        env: dict[str, str], tasks: Emulator, dead: Path) -> None:
    # Given a batch whose first message meets a server failing every attempt it gets (2 here),
    # then one that succeeds, one refused locally and one for a task already dispatched
    def record(offset: int, body: dict[str, Any]) -> dict[str, Any]:
        return {"Ckafka": {"topic": "mods", "partition": 2, "offset": offset, "msgKey": "None",
                           "msgBody": json.dumps(body)}}

    event = {"Records": [
        record(10, {"TaskID": DIGEST, "Type": "All", "SchedAt": "2031-07-01 10:00:00"}),
        record(11, {"TaskID": SPRING, "Type": "All", "SchedAt": "2031-07-02 10:00:00"}),
        record(12, {"TaskID": VIP, "Type": "Tag", "SchedAt": "2031-07-03 10:00:00", "Extra": 1}),
        record(13, {"TaskID": DISPATCHED, "Type": "All", "SchedAt": "2031-07-04 10:00:00"}),
    ]}
    tasks.add_faults([Fault(kind="internal_error", count=2, api="modify")])
    # When SCF invokes the function with it
    run = invoke(event, {**env, "IM_MAX_ATTEMPTS": "2"})
    # Then it succeeds (no replay), each message finished once: three dead-lettered by code, one applied
    codes = summary_codes(run)
    assert codes[1:] == [0, 90104, 90106] and codes[0] != 0
    got = {d["source"]["id"]: d for d in dead_letters(dead)}
    assert set(got) == {"ckafka:mods/2/10", "ckafka:mods/2/12", "ckafka:mods/2/13"}
    assert got["ckafka:mods/2/10"]["error"]["class"] == "retryable" and got["ckafka:mods/2/10"]["attempts"] == 2
    assert got["ckafka:mods/2/12"]["error"]["class"] == "invalid"
    assert got["ckafka:mods/2/13"]["error"]["class"] == "too_late"
    assert _sched_at(tasks, SPRING) == "2031-07-02 10:00:00"
    assert _sched_at(tasks, DIGEST) != "2031-07-01 10:00:00"


def test_cmq_tag_may_be_a_string_or_a_list(env: dict[str, str]) -> None:
    event = sample("cmq-topic")
    assert isinstance(event["Records"][0]["CMQ"]["msgTag"], str)
    listed = json.loads(json.dumps(event))
    listed["Records"][0]["CMQ"].update(msgTag=["campaign", "move"], msgId="123345350",
                                       publishTime="2026-11-30T08:00:01.000Z")  # published after the first
    # the same message delivered twice in one batch: the second is the same change, already applied (not sent)
    both = {"Records": [event["Records"][0], listed["Records"][0], listed["Records"][0]]}
    run = invoke(both, env)
    assert summary_codes(run) == [0, 0, 0]
    assert [r["ErrorInfo"] for r in run.result["results"]][2] == "already applied"


def test_a_record_without_a_body_is_dead_lettered_not_dropped(env: dict[str, str], dead: Path) -> None:
    event = sample("ckafka")
    del event["Records"][1]["Ckafka"]["msgBody"]
    codes = summary_codes(invoke(event, env))
    assert codes == [0, 90104]
    (letter,) = dead_letters(dead)
    assert "Records[1].Ckafka.msgBody" in letter["error"]["info"]
    assert json.loads(letter["raw"]) == event["Records"][1]  # the whole record, so nothing is lost


@pytest.mark.parametrize(("event", "named"), [
    ({"detail-type": "Scheduled Event", "source": "aws.events"}, "['detail-type', 'source']"),
    ({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}, "Records[0] with keys ['body', 'eventSource']"),
    ([1, 2], "a JSON list"),
])
def test_anything_else_fails_naming_what_was_not_recognised(event: Any, named: str, env: dict[str, str],
                                                            dead: Path) -> None:
    run = invoke(event, env)  # main_handler raises UnrecognisedEvent; timpush invoke says so in one line, exit 2
    assert run.returncode == 2 and run.result is None and "Traceback" not in run.stderr
    assert "not an SCF event this function takes" in run.stderr and named in run.stderr
    assert "CKafka (Records[].Ckafka)" in run.stderr
    assert not dead.exists()


def test_a_dead_letter_that_cannot_be_written_fails_the_invocation(env: dict[str, str], tmp_path: Path) -> None:
    # Given a dead-letter file in a directory that does not exist
    unwritable = tmp_path / "missing" / "dead.jsonl"
    # When a CKafka batch with failures arrives
    run = invoke(sample("ckafka-failing"), {**env, "DEAD_LETTER": f"file:{unwritable}"})
    # Then the invocation raises (SCF replays the batch), and the log keeps the records meanwhile
    assert run.returncode != 0 and run.result is None
    assert "DeadLetterError" in run.stderr
    (unwritten,) = [line for line in run.logs if line.get("message") == "dead letters could not be written"]
    assert [d["error"]["code"] for d in unwritten["records"]] == [90104]


def test_the_compat_names_behave_as_on_311_under_310() -> None:
    # enum.StrEnum and datetime.UTC are 3.11's; handler.compat stands in for them on SCF's 3.10
    checks = ("from handler.im.codes import ErrorClass; from handler.compat import UTC; "
              "import datetime, json, sys; e = ErrorClass.TOO_LATE; "
              "assert sys.version_info[:2] == (3, 10); "
              "assert (str(e), f'{e}', format(e, '>9'), e == 'too_late', json.dumps(e)) == "
              "('too_late', 'too_late', ' too_late', True, '\"too_late\"'); "
              "assert UTC is datetime.timezone.utc and ErrorClass('too_late') is e; print('ok')")
    done = run_python310(["-c", checks])
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_every_sample_has_a_failing_variant() -> None:
    names = {p.stem for p in SCF_EVENTS.glob("*.json")}
    bases = {n for n in names if not n.endswith("-failing")}
    assert bases == {"timer", "apigw", "function-url", "ckafka", "cmq-topic", "tdmq", "eventbridge-batch"}
    assert {f"{n}-failing" for n in bases} == names - bases


def _sched_at(emu: Emulator, task_id: int) -> str:
    return str(get_task(emu, task_id)["SchedAt"])


def test_the_scf_bundle_runs_index_main_handler_on_a_bare_310(env: dict[str, str], tmp_path: Path,
                                                             tasks: Emulator) -> None:
    # Given the real SCF artifact (wheels from PyPI), unpacked as SCF would, and a bare Python 3.10:
    # no site-packages (-S), so only the bundle and the standard library can be imported
    python = bundle.find_python((3, 10))
    assert python, "no Python 3.10 (require_python310 found one for the venv)"
    artifact = bundle.build(tmp_path / "scf.zip", platform="scf")
    with zipfile.ZipFile(artifact) as archive:
        archive.extractall(tmp_path / "user")
    call = ("import json, sys, index; "
            "print(json.dumps(index.main_handler(json.load(sys.stdin), {'time_limit_in_ms': 30000})))")
    # When SCF's entry, index.main_handler, gets the timer sample, with the fleet's state in Redis
    with redis_server() as state:
        done = subprocess.run([python, "-S", "-c", call], input=json.dumps(sample("timer")), capture_output=True,
                              text=True, cwd=tmp_path, timeout=120, check=False,
                              env={**env, **state.env, "PYTHONPATH": str(tmp_path / "user"),
                                   "TENCENTCLOUD_RUNENV": "SCF", "NO_PROXY": "127.0.0.1,localhost",
                                   "PATH": os.environ.get("PATH", "")})
        recorded = state.client().hget(f"task#{APP}#{SPRING}", "sched_at_key")
    # Then it applies the modification and records its order key in Redis, with nothing outside the bundle
    # (redis-py and, below Python 3.11.3, its async-timeout are in it; boto3 is not)
    assert done.returncode == 0, done.stderr[-2000:]
    assert recorded
    assert json.loads(done.stdout.splitlines()[-1])["succeeded"] == 1
    assert _sched_at(tasks, SPRING) == json.loads(sample("timer")["Message"])["SchedAt"]
    assert not (tmp_path / "user" / "boto3").exists()
