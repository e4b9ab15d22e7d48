"""The ``tdmq-cmq:REGION/QUEUE`` dead-letter sink against a fake of TDMQ for CMQ's HTTP data-flow API on loopback.

The fake checks each request's data-flow signature (HmacSHA256 over POST, host, path and the sorted parameters)
with the key it knows for the SecretId, and the session token, so a request not signed with the function
role's credentials fails. The last tests run the sink inside ``main_handler`` on Python 3.10, as SCF would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from handler.config import ConfigError, load
from handler.deadletter import DeadLetters, open_sink
from handler.deadletter import cmq as cmq_dataflow
from handler.deadletter.cmq import ENDPOINT_VAR, CmqError, CmqQueue
from handler.deadletter.record import WRITE_DEADLINE, DeadLetterError, Source, record
from handler.deadletter.tdmq import TdmqCmqSink
from handler.im.codes import ErrorClass, Origin
from handler.outcome import Outcome, Status
from tests.fakes.cmq_dataflow import FakeCmq
from tests.support.im import ADMIN, APP, KEY
from tests.support.scf import invoke, require_python310, sample
from timpush.demo import create_tasks
from timpush.emulator import Emulator, EmulatorSettings
from timpush.emulator.settings import SAMPLE_FIRST_TASK_ID

TC_ID, TC_KEY, TC_TOKEN = "AKIDscfrole0001", "scf-role-secret-key-9c2e", "scf-session-token-4b7d"
QUEUE = "timpush-dead-letters"
ROLE = {"TENCENTCLOUD_SECRETID": TC_ID, "TENCENTCLOUD_SECRETKEY": TC_KEY, "TENCENTCLOUD_SESSIONTOKEN": TC_TOKEN}


@pytest.fixture
def cmq() -> Iterator[FakeCmq]:
    with FakeCmq(credentials={TC_ID: TC_KEY}, require_token=TC_TOKEN) as fake:
        fake.create_queue(QUEUE)
        yield fake


@pytest.fixture
def role(cmq: FakeCmq, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {**ROLE, ENDPOINT_VAR: cmq.endpoint, "NO_PROXY": "127.0.0.1,localhost"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cmq_dataflow, "BACKOFF_BASE", 0.01)
    return env


def failure(raw: str = '{"TaskID": 1234567890, "Type": "Al", "SchedAt": "2031-06-20 09:00:00"}') -> dict[str, Any]:
    outcome = Outcome(Status.FAILED, raw, json.loads(raw), 90104, "Type: expected 'All', 'Tag' or 'User'",
                      ErrorClass.INVALID, Origin.LOCAL)
    return record(outcome, Source("scf", "ckafka:mods/0/7"))


def test_each_record_is_one_signed_send_message(cmq: FakeCmq, role: dict[str, str]) -> None:
    docs = [failure(), failure('{"TaskID": 1234567891, "Type": "Tag", "SchedAT": "x"}')]
    open_sink(f"tdmq-cmq:ap-guangzhou/{QUEUE}").write(docs)
    assert [json.loads(m) for m in cmq.bodies(QUEUE)] == docs
    sent = cmq.requests
    assert [r["Action"] for r in sent] == ["SendMessage", "SendMessage"]
    assert all(r["queueName"] == QUEUE and r["Token"] == TC_TOKEN and r["SecretId"] == TC_ID for r in sent)
    assert all(r["SignatureMethod"] == "HmacSHA256" for r in sent) and sent[0]["Nonce"] != sent[1]["Nonce"]


def test_a_throttled_send_backs_off_and_succeeds_within_the_deadline(cmq: FakeCmq, role: dict[str, str]) -> None:
    # Given a queue that answers "(10250)qps throttling" to the next three requests
    cmq.throttle(3)
    # When a dead letter is written
    open_sink(f"tdmq-cmq:ap-guangzhou/{QUEUE}").write([failure()])
    # Then it is sent again until accepted: nothing lost, the batch not failed
    assert cmq.actions() == ["SendMessage"] * 4 and len(cmq.bodies(QUEUE)) == 1


def test_throttling_past_the_deadline_fails_the_write_naming_the_code(cmq: FakeCmq, role: dict[str, str]) -> None:
    cmq.throttle(1000)
    token = WRITE_DEADLINE.set(time.monotonic() - 5)  # the work used the invocation: only MIN_BUDGET is left
    try:
        with pytest.raises(DeadLetterError, match=r"1 of 1 dead letter\(s\) not sent \(code 4000/10250\)"):
            open_sink(f"tdmq-cmq:ap-guangzhou/{QUEUE}").write([failure()])
    finally:
        WRITE_DEADLINE.reset(token)
    assert 1 < len(cmq.requests) < 1000 and cmq.bodies(QUEUE) == []


def test_a_refused_send_raises_naming_the_queue_and_count_only(cmq: FakeCmq, role: dict[str, str]) -> None:
    with pytest.raises(DeadLetterError) as raised:
        TdmqCmqSink("ap-guangzhou/no-such-queue").write([failure(), failure()])
    text = str(raised.value)
    assert text.startswith("tdmq-cmq:ap-guangzhou/no-such-queue: 2 of 2 dead letter(s) not sent (code 4440")
    assert raised.value.__cause__ is None and TC_KEY not in text
    assert len(cmq.requests) == 1  # not a retryable answer: no second try


@pytest.mark.parametrize("change", [{"TENCENTCLOUD_SECRETKEY": "not-the-role-key"},
                                    {"TENCENTCLOUD_SESSIONTOKEN": "stale-token"},
                                    {"TENCENTCLOUD_SECRETID": "AKIDsomeoneelse"}])
def test_wrong_credentials_are_refused_by_the_signature_check(change: dict[str, str], cmq: FakeCmq,
                                                              role: dict[str, str]) -> None:
    with pytest.raises(DeadLetterError, match=r"code 4100"):
        TdmqCmqSink(f"ap-guangzhou/{QUEUE}", {**role, **change}).write([failure()])
    assert cmq.bodies(QUEUE) == []


def test_receive_hides_a_message_until_its_visibility_timeout_and_delete_removes_it(cmq: FakeCmq,
                                                                                  role: dict[str, str]) -> None:
    queue = CmqQueue("ap-guangzhou", QUEUE, role)
    deadline = time.monotonic() + 5
    queue.send("first", deadline)
    got = queue.receive(0, deadline)
    assert got is not None and (got.body, got.dequeue_count) == ("first", 1)
    assert queue.receive(0, deadline) is None  # invisible after receipt
    cmq.advance(31)  # past the queue's 30 s visibility timeout
    again = queue.receive(0, deadline)
    assert again is not None and again.dequeue_count == 2 and again.receipt != got.receipt
    with pytest.raises(CmqError):
        queue.delete(got.receipt, deadline)  # the first receipt is spent
    queue.delete(again.receipt, deadline)
    cmq.advance(31)
    assert queue.receive(0, deadline) is None and cmq.bodies(QUEUE) == []


@pytest.mark.parametrize(("env", "address"), [
    ({"TENCENTCLOUD_RUNENV": "SCF"}, "http://gz.mqadapter.cmq.tencentyun.com"),
    ({}, "https://cmq-gz.public.tencenttdmq.com"),
    ({ENDPOINT_VAR: "http://10.0.0.5:8080"}, "http://10.0.0.5:8080"),
    ({ENDPOINT_VAR: "https://cmq-gz.public1250.tencenttdmq.com/", "TENCENTCLOUD_RUNENV": "SCF"},
     "https://cmq-gz.public1250.tencenttdmq.com"),
])
def test_the_address_comes_from_the_region_private_inside_scf(env: dict[str, str], address: str) -> None:
    assert cmq_dataflow.endpoint("ap-guangzhou", env) == address


@pytest.mark.parametrize(("region", "env", "named"), [
    ("ap-nowhere", {}, "no CMQ address known for region ap-nowhere"),
    ("ap-guangzhou", {ENDPOINT_VAR: "ftp://x"}, ENDPOINT_VAR),
])
def test_an_address_that_cannot_be_had_is_a_configuration_error(region: str, env: dict[str, str],
                                                                 named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        cmq_dataflow.endpoint(region, env)


@pytest.mark.parametrize("spec", ["tdmq-cmq:guangzhou/q", "tdmq-cmq:ap-guangzhou/", "tdmq-cmq:ap-guangzhou/9q",
                                  "tdmq-cmq:ap-guangzhou/a/b"])
def test_a_target_of_the_wrong_form_fails_at_cold_start_naming_the_variable(spec: str) -> None:
    settings = load({"IM_SECRET_KEY": "k", "DEAD_LETTER": spec})
    with pytest.raises(ConfigError, match="^DEAD_LETTER: .*REGION/QUEUE"):
        DeadLetters.from_settings(settings)
    routed = load({"IM_SECRET_KEY": "k", "DEAD_LETTER_ROUTES": json.dumps({"too_late": spec})})
    with pytest.raises(ConfigError, match=r"^DEAD_LETTER_ROUTES\['too_late'\]: "):
        DeadLetters.from_settings(routed)


def test_dead_letter_is_required_on_scf() -> None:
    with pytest.raises(ConfigError, match="^DEAD_LETTER: required on SCF"):
        load({"IM_SECRET_KEY": "k", "TENCENTCLOUD_RUNENV": "SCF"})


# -- inside main_handler on Python 3.10 ------------------------------------------------------------

@pytest.fixture
def scf_env(cmq: FakeCmq) -> Iterator[dict[str, str]]:
    require_python310()
    settings = EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=5, first_task_id=SAMPLE_FIRST_TASK_ID)
    with Emulator(settings) as emu:
        create_tasks(emu, say=lambda _text: None)
        yield {"IM_ENDPOINT": emu.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN,
               "DEAD_LETTER": f"tdmq-cmq:ap-guangzhou/{QUEUE}", ENDPOINT_VAR: cmq.endpoint, **ROLE}


def test_scf_failures_reach_the_tdmq_queue(scf_env: dict[str, str], cmq: FakeCmq) -> None:
    event = sample("ckafka-failing")
    cmq.throttle(2)  # the queue's QPS limit met on the way: backed off, not a failed batch
    run = invoke(event, scf_env)
    assert run.returncode == 0, run.stderr[-2000:]
    got = [json.loads(m) for m in cmq.bodies(QUEUE)]
    assert [d["error"]["code"] for d in got] == [90104, 90106]
    assert [d["raw"] for d in got] == [r["Ckafka"]["msgBody"] for r in event["Records"]]
    for secret in (TC_KEY, TC_TOKEN, KEY):  # neither the role's credentials nor the app key leave the process
        assert secret not in run.stderr and all(secret not in m for m in cmq.bodies(QUEUE))


def test_scf_invocation_raises_when_the_queue_refuses(scf_env: dict[str, str], cmq: FakeCmq) -> None:
    run = invoke(sample("tdmq-failing"), {**scf_env, "DEAD_LETTER": "tdmq-cmq:ap-guangzhou/missing-queue"})
    assert run.returncode != 0 and run.result is None
    assert "tdmq-cmq:ap-guangzhou/missing-queue: 1 of 1 dead letter(s) not sent (code 4440" in run.stderr
    assert cmq.actions() == ["SendMessage"] and TC_KEY not in run.stderr


def test_scf_maintenance_timer_applies_a_retryable_letter_on_310(scf_env: dict[str, str], cmq: FakeCmq) -> None:
    # Given a retryable dead letter for a pending task and one that is not a record
    raw = json.dumps({"TaskID": SAMPLE_FIRST_TASK_ID, "Type": "All", "SchedAt": "2031-08-08 08:00:00"})
    outcome = Outcome(Status.FAILED, raw, json.loads(raw), 70500, "busy", ErrorClass.RETRYABLE, Origin.REMOTE)
    cmq.put(QUEUE, json.dumps(record(outcome, Source("scf", "ckafka:mods/0/9"))))
    cmq.put(QUEUE, "not a record")
    # When SCF's maintenance Timer fires, in SCF's interpreter
    run = invoke({"Type": "Timer", "TriggerName": "timpush-maintenance", "Time": "2030-06-01T09:00:00Z",
                  "Message": "maintenance"}, scf_env)
    # Then the letter was applied and deleted; the other is kept
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.result == {"redriven": 1, "failed_again": 0, "kept": 1, "kept_at_limit": 0}
    assert cmq.bodies(QUEUE) == ["not a record"]
