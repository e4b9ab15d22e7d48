"""The TDMQ for CMQ data-flow client's pieces that need no server: the signature, answers, back-off, credentials."""

from __future__ import annotations

import base64
import hmac
import json
import time

import pytest
import requests

from handler.config import ConfigError
from handler.deadletter import cmq as cmq_dataflow
from handler.deadletter.cmq import CmqError, retrying

# The example of Tencent's signature page (406/5906): its parameters and the source string it builds from them.
DOC_PARAMS = {"Action": "SendMessage", "SecretId": "AKIDPcY*****CVYLn3zT", "Timestamp": 1534154812,
              "SignatureMethod": "HmacSHA1", "Nonce": 2889712707386595659, "queueName": "test1",
              "RequestClient": "SDK_Python_1.3", "clientRequestId": "123***1231", "delaySeconds": 0,
              "msgBody": "msg"}
DOC_SOURCE = ("POSTcmq-queue-gz.api.qcloud.com/v2/index.php?Action=SendMessage&Nonce=2889712707386595659"
              "&RequestClient=SDK_Python_1.3&SecretId=AKIDPcY*****CVYLn3zT&SignatureMethod=HmacSHA1"
              "&Timestamp=1534154812&clientRequestId=123***1231&delaySeconds=0&msgBody=msg&queueName=test1")


@pytest.mark.parametrize(("method", "digest"), [("HmacSHA1", "sha1"), ("HmacSHA256", "sha256")])
def test_the_signature_is_the_documented_hmac_of_the_sorted_source_string(method: str, digest: str) -> None:
    params = {**DOC_PARAMS, "SignatureMethod": method}
    source = DOC_SOURCE.replace("HmacSHA1", method)
    want = base64.b64encode(hmac.new(b"pPgfLip-key", source.encode(), digest).digest()).decode()
    assert cmq_dataflow.signature("pPgfLip-key", "cmq-queue-gz.api.qcloud.com", params) == want


def answer(doc: object, status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(doc).encode()
    return response


def test_an_answer_with_code_0_is_the_document() -> None:
    doc = {"code": 0, "message": "", "requestId": "r1", "msgId": "m1"}
    assert cmq_dataflow._answer(answer(doc), "SendMessage on q") == doc


@pytest.mark.parametrize(("doc", "status", "code", "module", "retryable"), [
    ({"code": 4000, "message": "(10250)qps throttling", "requestId": "r"}, 200, 4000, 10250, True),
    ({"code": 7000, "message": "(10200)no message", "requestId": "r"}, 200, 7000, 10200, False),
    ({"code": 4100, "message": "(10110)signature is not matched"}, 200, 4100, 10110, False),
    ({"code": 0}, 503, 503, None, True),
    ({"code": 0}, 429, 429, None, True),
    ({"not": "the envelope"}, 200, 502, None, True),
])
def test_failures_are_typed_with_tencents_code_and_module(doc: object, status: int, code: int, module: int | None,
                                                          retryable: bool) -> None:
    with pytest.raises(CmqError) as raised:
        cmq_dataflow._answer(answer(doc, status), "SendMessage on q")
    assert (raised.value.code, raised.value.module, raised.value.retryable) == (code, module, retryable)
    assert str(raised.value).startswith("SendMessage on q: ")


def test_retrying_stops_at_a_lasting_failure_or_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    calls: list[int] = []

    def throttled() -> None:
        calls.append(1)
        raise CmqError("throttled", 4000, 10250)

    with pytest.raises(CmqError):
        retrying(throttled, time.monotonic() - 1)  # no time left: one try
    assert len(calls) == 1

    def refused() -> None:
        calls.append(2)
        raise CmqError("no such queue", 4440, 10490)

    with pytest.raises(CmqError):
        retrying(refused, time.monotonic() + 60)  # not retryable: one try, however much time is left
    assert calls == [1, 2]


def test_retrying_returns_once_the_throttling_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    answers = [CmqError("throttled", 4000, 10250), CmqError("throttled", 4000, 10250), "msg-1"]

    def call() -> str:
        got = answers.pop(0)
        if isinstance(got, CmqError):
            raise got
        return got

    assert retrying(call, time.monotonic() + 60) == "msg-1" and answers == []


def test_role_credentials_come_from_scfs_variables_and_half_a_pair_is_refused() -> None:
    env = {"TENCENTCLOUD_SECRETID": "AKID1", "TENCENTCLOUD_SECRETKEY": "k", "TENCENTCLOUD_SESSIONTOKEN": "t"}
    assert cmq_dataflow.credentials(env) == ("AKID1", "k", "t")
    with pytest.raises(ConfigError, match="set both or neither"):
        cmq_dataflow.credentials({"TENCENTCLOUD_SECRETID": "AKID1"})
