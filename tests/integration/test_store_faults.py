"""Store faults named and split (issue 25 item 5), on DynamoDB: moto server for the missing table, a loopback
fake for what moto cannot do (throttling, 5xx, access denied, bad credentials), a closed port and a silent
server. Each fault says its cause in words; a transient one is tried again within the invocation (counted by
what the server saw); a configuration fault is not, logs one ERROR per process, and an HTTP caller is told
only "state store unavailable"."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from handler import lambda_handler
from handler.compat import UTC
from handler.order import faults
from handler.order.key import Issue, TaskKey
from handler.order.store import StoreMisconfigured, StoreUnavailable
from handler.order.task import TaskOrder
from handler.state import dynamodb as dynamo_store
from handler.state.dynamodb import DynamoStore
from tests.fakes.dynamodb_faults import FaultyDynamo
from tests.fakes.moto_dynamodb import MotoDynamo, moto_dynamodb
from tests.fakes.moto_server import DUMMY_ENV
from tests.fakes.redis_server import free_port
from tests.fakes.silent_server import SilentServer
from tests.support.im import ADMIN, APP, KEY, add_task, dead_letters, modify_requests
from tests.support.lambda_events import configure, http_event
from timpush.context import LocalContext
from timpush.emulator import Emulator, EmulatorSettings

pytestmark = pytest.mark.integration

TABLE = "timpush-state"
TASK = TaskKey(APP, 4242)
STAMP = Issue(datetime(2026, 6, 1, tzinfo=UTC), "sqs:m1").stamp(None, 0)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in DUMMY_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    dynamo_store.forget_client()
    faults.forget_reported()
    yield
    dynamo_store.forget_client()
    faults.forget_reported()


def _fake(monkeypatch: pytest.MonkeyPatch, fake: FaultyDynamo) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", fake.endpoint)
    dynamo_store.forget_client()


def _claim(deadline_s: float = 30.0) -> object:
    import time

    return TaskOrder(DynamoStore(TABLE)).claim(TASK, ["SchedAt"], STAMP, time.monotonic() + deadline_s)


@pytest.mark.parametrize(("code", "status"), [("ThrottlingException", 400),
                                              ("ProvisionedThroughputExceededException", 400),
                                              ("InternalServerError", 500), ("ServiceUnavailable", 503)])
def test_a_transient_fault_is_tried_again_until_the_table_answers(aws: None, monkeypatch: pytest.MonkeyPatch,
                                                                  code: str, status: int) -> None:
    # botocore makes three requests of each call itself (max_attempts 2 retries): five faults spend our first
    # call and two requests of the second, whose third is answered
    with FaultyDynamo([(code, status)] * 5) as fake:
        _fake(monkeypatch, fake)
        claim = _claim()
    assert claim.kept == ("SchedAt",)  # type: ignore[attr-defined]
    assert fake.seen["UpdateItem"] == 6


@pytest.mark.parametrize(("code", "cause"), [
    ("ThrottlingException", "throttled"), ("RequestLimitExceeded", "throttled"),
    ("InternalServerError", "server error (HTTP 500)")])
def test_a_transient_fault_names_its_cause(aws: None, monkeypatch: pytest.MonkeyPatch, code: str,
                                           cause: str) -> None:
    status = 500 if code.startswith("Internal") else 400
    with FaultyDynamo([(code, status)] * 99) as fake:
        _fake(monkeypatch, fake)
        with pytest.raises(StoreUnavailable) as fault:
            DynamoStore(TABLE).lease(TASK, "me", 1, 0)
    assert fault.value.transient and fault.value.cause == cause and fault.value.store == f"dynamodb:{TABLE}"


@pytest.mark.parametrize(("code", "cause"), [
    ("AccessDeniedException", "no permission (dynamodb:UpdateItem)"),
    ("ResourceNotFoundException", "no such table"),
    ("UnrecognizedClientException", "authentication failed (the AWS credentials are not valid)"),
    ("InvalidSignatureException", "authentication failed (the AWS secret key does not match)"),
    ("ExpiredTokenException", "authentication failed (the AWS session token has expired)"),
])
def test_a_configuration_fault_is_named_and_not_tried_again(aws: None, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture, code: str,
                                                            cause: str) -> None:
    caplog.set_level(logging.ERROR)
    with FaultyDynamo([(code, 400)] * 99) as fake:
        _fake(monkeypatch, fake)
        for _ in range(2):
            with pytest.raises(StoreMisconfigured) as fault:
                _claim()
            assert fault.value.cause == cause
    assert fake.seen["UpdateItem"] <= 2 * 3  # at most botocore's own three per claim: ours made one call each
    errors = [r for r in caplog.records if "state store misconfigured" in r.getMessage()]
    assert len(errors) == 1 and getattr(errors[0], "cause", None) == cause


def test_a_closed_port_is_connection_refused(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{free_port()}")
    dynamo_store.forget_client()
    with pytest.raises(StoreUnavailable) as fault:
        DynamoStore(TABLE).lease(TASK, "me", 1, 0)
    assert fault.value.transient and fault.value.cause == "connection refused"


def test_a_silent_server_is_timed_out(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with SilentServer() as silent:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", silent.url)
        dynamo_store.forget_client()
        with pytest.raises(StoreUnavailable) as fault:
            DynamoStore(TABLE).lease(TASK, "me", 1, 0)
    assert fault.value.transient and fault.value.cause == "timed out"


# --- through the handler: a missing table (moto) ------------------------------------------------------------


@pytest.fixture(scope="module")
def dynamo() -> Iterator[MotoDynamo]:
    with moto_dynamodb() as running:
        yield running


@pytest.fixture
def missing_table(dynamo: MotoDynamo, aws: None, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=9, rate_limit=0)) as running:
        configure(monkeypatch, {"IM_ENDPOINT": running.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY,
                                "IM_ADMIN": ADMIN, "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}",
                                **dynamo.env, "IM_STATE_STORE": "dynamodb:no-such-table"})
        yield running


def test_a_missing_table_is_named_in_the_dead_letter_and_hidden_from_an_http_caller(
    missing_table: Emulator, dynamo: MotoDynamo, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    task = add_task(missing_table)
    missing_table.clear_requests()
    mod = {"TaskID": task, "Type": "All", "SchedAt": "2031-02-02 10:00:00"}
    result = lambda_handler(mod, LocalContext())["results"][0]
    assert result["ErrorCode"] == -6
    assert result["ErrorInfo"] == "not sent: state store dynamodb:no-such-table: no such table"
    [letter] = dead_letters(tmp_path / "dead.jsonl")
    assert letter["error"]["info"] == result["ErrorInfo"] and letter["error"]["class"] == "retryable"
    answer = lambda_handler(http_event(f"/sched-tasks/{task}", json.dumps(mod)), LocalContext())
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 503 and body["ErrorCode"] == -6
    assert body["ErrorInfo"] == "state store unavailable"
    assert "no-such-table" not in answer["body"]
    assert modify_requests(missing_table) == []  # nothing sent unguarded
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and getattr(errors[0], "store", None) == "dynamodb:no-such-table"  # once per process
    printed = capsys.readouterr().out  # EMF metric lines
    assert printed.count('"StateStoreMisconfigured"') == 4  # counted in both invocations (name and value)
