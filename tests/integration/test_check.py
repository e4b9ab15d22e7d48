"""``timpush check`` (issue 25 item 7) against real servers on loopback: moto (Secrets Manager, SQS, DynamoDB) and
a redis-server with a password. A good environment passes with exit 0; a wrong password, a missing table and an
unreachable sink each fail with exit 1 and a line naming the fix; nothing secret is printed, ever."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest

from handler.deadletter import sqs as deadletter_sqs
from handler.order import faults
from handler.state import dynamodb as dynamo_store
from tests.fakes.moto_server import DUMMY_ENV, MotoServer
from tests.fakes.redis_server import RedisServer, redis_server
from tests.support.im import APP, KEY
from tests.support.lambda_events import configure
from timpush.cli import main

pytestmark = pytest.mark.integration

PASSWORD = "Zq9-check-Redis/pw@odd"  # noqa: S105  # a test server's
SECRET_NAME = "im/check-key"
TABLE = "timpush-check"


@pytest.fixture(scope="module")
def redis_with_password() -> Iterator[RedisServer]:
    with redis_server(PASSWORD) as server:
        yield server


@pytest.fixture
def cloud(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto for every AWS service: the secret, a work queue, a dead-letter queue and the table."""
    for name, value in {**DUMMY_ENV, "AWS_ENDPOINT_URL": moto.endpoint}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS",
                 "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    moto.reset()
    session = boto3.session.Session()
    session.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=KEY)
    sqs = session.client("sqs")
    dlq = sqs.create_queue(QueueName="check-dead-letters")["QueueUrl"]
    work = sqs.create_queue(QueueName="check-work")["QueueUrl"]
    session.client("dynamodb").create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    _forget()
    yield {"dlq": dlq, "work": work}
    _forget()


def _forget() -> None:
    from handler.state.redis_store import forget_clients

    dynamo_store.forget_client()
    deadletter_sqs.forget_clients()
    forget_clients()
    faults.forget_reported()


def _environment(cloud: dict[str, str], redis: RedisServer, tmp_path: Path, **override: str) -> dict[str, str]:
    env = {"IM_SDKAPPID": str(APP), "IM_SECRET_SOURCE": f"aws-secretsmanager:{SECRET_NAME}",
           "IM_STATE_STORE": f"redis://127.0.0.1:{redis.port}/0", "IM_STATE_STORE_PASSWORD": PASSWORD,
           "DEAD_LETTER": f"sqs:{cloud['dlq']}",
           "DEAD_LETTER_ROUTES": f'{{"invalid": "file:{tmp_path / "bad.jsonl"}"}}',
           "WORK_QUEUE": f"sqs:{cloud['work']}"}
    env.update(override)
    return {name: value for name, value in env.items() if value}


def _check(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
           capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.delenv("IM_SECRET_KEY", raising=False)
    monkeypatch.delenv("IM_STATE_STORE_PASSWORD", raising=False)
    configure(monkeypatch, env)
    _forget()
    code = main(["check"])
    out, err = capsys.readouterr()
    text = out + err
    for secret in (KEY, PASSWORD, quote(PASSWORD, safe="")):
        assert secret not in text  # nothing secret, whatever passed or failed
    return code, out


def test_a_good_environment_passes(cloud: dict[str, str], redis_with_password: RedisServer, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _check(monkeypatch, _environment(cloud, redis_with_password, tmp_path), capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert all(line.startswith("ok    ") for line in lines)
    assert any(line.startswith(f"ok    secret source: aws-secretsmanager:{SECRET_NAME}: fetched") for line in lines)
    assert any(line.startswith(f"ok    UserSig for SDKAppID {APP}: generated and verified") for line in lines)
    assert any("lease: taken and released on the throw-away task task#0#" in line for line in lines)
    assert any(line.startswith(f"ok    dead letters sqs:{cloud['dlq']}: reachable") for line in lines)
    assert any(line.startswith("ok    dead letters file:") for line in lines)
    assert any(line.startswith(f"ok    work queue sqs:{cloud['work']}: reachable") for line in lines)
    assert redis_with_password.client().dbsize() == 0  # the throw-away lease was released: no key left behind


def test_a_good_dynamodb_store_passes(cloud: dict[str, str], redis_with_password: RedisServer, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env = _environment(cloud, redis_with_password, tmp_path, IM_STATE_STORE=f"dynamodb:{TABLE}",
                       IM_STATE_STORE_PASSWORD="")
    code, out = _check(monkeypatch, env, capsys)
    assert code == 0, out
    assert f"ok    state store dynamodb:{TABLE} lease: taken and released" in out


def test_a_wrong_password_fails_and_names_the_fix(cloud: dict[str, str], redis_with_password: RedisServer,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    env = _environment(cloud, redis_with_password, tmp_path, IM_STATE_STORE_PASSWORD="not-" + PASSWORD[::-1])
    code, out = _check(monkeypatch, env, capsys)
    assert code == 1
    [line] = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert f"state store redis://127.0.0.1:{redis_with_password.port}/0" in line
    assert "fix: check the password" in line
    assert PASSWORD[::-1] not in out  # the wrong password is a secret too


def test_a_missing_table_fails_and_names_the_fix(cloud: dict[str, str], redis_with_password: RedisServer,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    env = _environment(cloud, redis_with_password, tmp_path, IM_STATE_STORE="dynamodb:no-such-table",
                       IM_STATE_STORE_PASSWORD="")
    code, out = _check(monkeypatch, env, capsys)
    assert code == 1
    [line] = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert line.startswith("FAIL  state store dynamodb:no-such-table lease: no such table; fix: create the table")


def test_an_unreachable_sink_fails_and_names_the_fix(cloud: dict[str, str], redis_with_password: RedisServer,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    gone = cloud["dlq"].rsplit("/", 1)[0] + "/no-such-queue"
    env = _environment(cloud, redis_with_password, tmp_path, DEAD_LETTER=f"sqs:{gone}",
                       DEAD_LETTER_ROUTES=f'{{"invalid": "file:{tmp_path / "missing" / "bad.jsonl"}"}}')
    code, out = _check(monkeypatch, env, capsys)
    assert code == 1
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failures) == 2
    assert failures[0].startswith(f"FAIL  dead letters sqs:{gone}: no such queue; fix: create the queue")
    assert "no folder" in failures[1] and "fix: create the folder" in failures[1]


def test_a_bad_configuration_fails_first_and_alone(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    configure(monkeypatch, {"IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY,
                            "IM_STATE_STORE": f"redis//:{quote(PASSWORD, safe='')}@cache:6379"})
    assert main(["check"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("FAIL  configuration: IM_STATE_STORE: must be") and len(out.splitlines()) == 1
    assert quote(PASSWORD, safe="") not in out + err and KEY not in out + err


def test_a_usage_mistake_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["check", "--no-such-option"])
    assert usage.value.code == 2


def test_an_evicting_redis_fails_once_with_its_policy_and_its_fix(cloud: dict[str, str], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # Given a Redis as ElastiCache's default parameter group sets it up (maxmemory and volatile-lru)
    with redis_server(args=["--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"]) as evicting:
        env = _environment(cloud, evicting, tmp_path, IM_STATE_STORE_PASSWORD="")
        code, out = _check(monkeypatch, env, capsys)
        assert code == 1
        [line] = [line for line in out.splitlines() if line.startswith("FAIL")]
        # Then the line names the policy and the fix once (the home's refusal carries the fix itself)
        assert "volatile-lru" in line and line.count("IM_STATE_STORE_EVICTION=accept") == 1
        assert line.endswith("fix: the one the message gives")
        # And with the risk taken knowingly, every check passes and the policy is still shown
        code, out = _check(monkeypatch, {**env, "IM_STATE_STORE_EVICTION": "accept"}, capsys)
        assert code == 0, out
        assert "eviction policy: volatile-lru" in out and "accepted: IM_STATE_STORE_EVICTION=accept" in out
