"""The ``tdmq-cmq:REGION/QUEUE`` dead-letter sink against a fake TDMQ API on loopback (TC3-signed requests).

The fake verifies each request's TC3-HMAC-SHA256 signature with the key it knows for the secret id,
and the session token, so a request the SDK did not sign with the function role's credentials fails.
The last tests run the sink inside ``main_handler`` on Python 3.10, as SCF would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from handler.config import ConfigError, load
from handler.deadletter import DeadLetterError, DeadLetters, Source, open_sink, record
from handler.deadletter_tdmq import ENDPOINT_VAR, TdmqCmqSink
from handler.im.codes import ErrorClass, Origin
from handler.outcome import Outcome, Status
from tests.fakes.tencent_tdmq import FakeTdmq
from tests.support.im import ADMIN, APP, KEY
from tests.support.scf import invoke, require_python310, sample
from timpush.demo import create_tasks
from timpush.emulator import Emulator, EmulatorSettings
from timpush.emulator.settings import SAMPLE_FIRST_TASK_ID

TC_ID, TC_KEY, TC_TOKEN = "AKIDscfrole0001", "scf-role-secret-key-9c2e", "scf-session-token-4b7d"
QUEUE = "timpush-dead-letters"
ROLE = {"TENCENTCLOUD_SECRETID": TC_ID, "TENCENTCLOUD_SECRETKEY": TC_KEY, "TENCENTCLOUD_SESSIONTOKEN": TC_TOKEN}


@pytest.fixture
def tdmq() -> Iterator[FakeTdmq]:
    with FakeTdmq(credentials={TC_ID: TC_KEY}, require_token=TC_TOKEN) as fake:
        fake.create_queue(QUEUE)
        yield fake


@pytest.fixture
def role(tdmq: FakeTdmq, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {**ROLE, ENDPOINT_VAR: tdmq.endpoint, "NO_PROXY": "127.0.0.1,localhost"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def failure(raw: str = '{"TaskID": 1234567890, "Type": "Al", "SchedAt": "2031-06-20 09:00:00"}') -> dict[str, Any]:
    outcome = Outcome(Status.FAILED, raw, json.loads(raw), 90104, "Type: expected 'All', 'Tag' or 'User'",
                      ErrorClass.INVALID, Origin.LOCAL)
    return record(outcome, Source("scf", "ckafka:mods/0/7"))


def test_each_record_is_one_signed_send_cmq_msg(tdmq: FakeTdmq, role: dict[str, str]) -> None:
    docs = [failure(), failure('{"TaskID": 1234567891, "Type": "Tag", "SchedAT": "x"}')]
    open_sink(f"tdmq-cmq:ap-guangzhou/{QUEUE}").write(docs)
    assert [json.loads(m) for m in tdmq.messages(QUEUE)] == docs
    sent = tdmq.requests
    assert [r.action for r in sent] == ["SendCmqMsg", "SendCmqMsg"]
    assert all(r.headers["x-tc-region"] == "ap-guangzhou" and r.headers["x-tc-token"] == TC_TOKEN for r in sent)
    assert all(r.headers["x-tc-version"] == "2020-02-17" and r.body["QueueName"] == QUEUE for r in sent)


def test_a_refused_send_raises_naming_the_queue_and_count_only(tdmq: FakeTdmq, role: dict[str, str]) -> None:
    tdmq.fail_next("InternalError", f"boom {TC_KEY}")
    with pytest.raises(DeadLetterError) as raised:
        open_sink(f"tdmq-cmq:ap-guangzhou/{QUEUE}").write([failure(), failure()])
    text = str(raised.value)
    assert text == f"tdmq-cmq:ap-guangzhou/{QUEUE}: 2 of 2 dead letter(s) not sent (InternalError)"
    assert raised.value.__cause__ is None and TC_KEY not in text


@pytest.mark.parametrize(("change", "code"), [
    ({"TENCENTCLOUD_SECRETKEY": "not-the-role-key"}, "AuthFailure.SignatureFailure"),
    ({"TENCENTCLOUD_SESSIONTOKEN": "stale-token"}, "AuthFailure.TokenFailure"),
])
def test_wrong_credentials_are_refused_by_the_signature_check(change: dict[str, str], code: str, tdmq: FakeTdmq,
                                                              role: dict[str, str]) -> None:
    with pytest.raises(DeadLetterError, match=code):
        TdmqCmqSink(f"ap-guangzhou/{QUEUE}", {**role, **change}).write([failure()])
    assert tdmq.messages(QUEUE) == []


def test_an_unknown_queue_fails_the_write(tdmq: FakeTdmq, role: dict[str, str]) -> None:
    with pytest.raises(DeadLetterError, match="ResourceNotFound"):
        open_sink("tdmq-cmq:ap-guangzhou/no-such-queue").write([failure()])


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
def scf_env(tdmq: FakeTdmq) -> Iterator[dict[str, str]]:
    require_python310()
    settings = EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=5, first_task_id=SAMPLE_FIRST_TASK_ID)
    with Emulator(settings) as emu:
        create_tasks(emu, say=lambda _text: None)
        yield {"IM_ENDPOINT": emu.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN,
               "DEAD_LETTER": f"tdmq-cmq:ap-guangzhou/{QUEUE}", ENDPOINT_VAR: tdmq.endpoint, **ROLE}


def test_scf_failures_reach_the_tdmq_queue(scf_env: dict[str, str], tdmq: FakeTdmq) -> None:
    event = sample("ckafka-failing")
    run = invoke(event, scf_env)
    assert run.returncode == 0, run.stderr[-2000:]
    got = [json.loads(m) for m in tdmq.messages(QUEUE)]
    assert [d["error"]["code"] for d in got] == [90104, 90106]
    assert [d["raw"] for d in got] == [r["Ckafka"]["msgBody"] for r in event["Records"]]
    for secret in (TC_KEY, TC_TOKEN, KEY):  # neither the role's credentials nor the app key leave the process
        assert secret not in run.stderr and all(secret not in m for m in tdmq.messages(QUEUE))


def test_scf_invocation_raises_when_the_queue_refuses(scf_env: dict[str, str], tdmq: FakeTdmq) -> None:
    run = invoke(sample("tdmq-failing"), {**scf_env, "DEAD_LETTER": "tdmq-cmq:ap-guangzhou/missing-queue"})
    assert run.returncode != 0 and run.result is None
    assert "tdmq-cmq:ap-guangzhou/missing-queue: 1 of 1 dead letter(s) not sent (ResourceNotFound)" in run.stderr
    assert tdmq.count("SendCmqMsg") == 1 and TC_KEY not in run.stderr
