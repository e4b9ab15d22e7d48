"""The app key from each secret store, end to end: store → handler → emulator, over real HTTP.

AWS Secrets Manager and SSM Parameter Store are moto in server mode, Tencent Cloud SSM is the fake
API 3.0 endpoint reached by the real SDK. No IM_SECRET_KEY anywhere: the key exists only in the
store. Each test runs once per store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import boto3
import pytest

from handler import lambda_handler
from handler.im import client
from handler.im.usersig import generate
from tests.fakes.moto_server import DUMMY_ENV, MotoServer
from tests.fakes.moto_sqs import free_port
from tests.fakes.tencent_ssm import FakeTencentSSM
from tests.support.im import ADMIN, APP, KEY, dead_letters, modify_requests
from tests.support.lambda_events import configure, failed_ids, http_event, sqs_event, sqs_record
from timpush.context import LocalContext
from timpush.emulator import Emulator, EmulatorSettings

pytestmark = pytest.mark.integration

ROTATED = "tp-rotated-e2e-key-5a4b3c2d1e0f9a8b7c6d5e4f"
FIRST_TASK = 1234567890
TC_ID, TC_KEY = "AKIDe2etestid", "e2e-tc-secret-key"
STORES = ["aws-secretsmanager", "aws-ssm", "tencent-ssm"]


class Store(Protocol):
    """One secret store holding the app key, as the handler will be configured to read it."""

    source: str

    def env(self) -> dict[str, str]: ...
    def put(self, key: str) -> None: ...
    def put_value(self, value: str) -> None: ...
    def delete(self) -> None: ...
    def fetches(self) -> int: ...
    def take_down(self) -> None: ...


class SecretsManagerStore:
    source = "aws-secretsmanager:im/app-key"

    def __init__(self, moto: MotoServer) -> None:
        self.moto = moto
        self.client = boto3.client("secretsmanager", endpoint_url=moto.endpoint, region_name="us-east-1")
        self.endpoint = moto.endpoint

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint}

    def put(self, key: str) -> None:  # the JSON form, carrying the SDKAppID and the admin too
        self.put_value(json.dumps({"SDKAppID": APP, "Key": key, "Admin": ADMIN}))

    def put_value(self, value: str) -> None:
        try:
            self.client.put_secret_value(SecretId="im/app-key", SecretString=value)
        except self.client.exceptions.ResourceNotFoundException:
            self.client.create_secret(Name="im/app-key", SecretString=value)

    def delete(self) -> None:
        self.client.delete_secret(SecretId="im/app-key", ForceDeleteWithoutRecovery=True)

    def fetches(self) -> int:
        return self.moto.count("secretsmanager.GetSecretValue")

    def take_down(self) -> None:
        self.endpoint = f"http://127.0.0.1:{free_port()}"


class ParameterStore:
    source = "aws-ssm:/timpush/app-key"

    def __init__(self, moto: MotoServer) -> None:
        self.moto = moto
        self.client = boto3.client("ssm", endpoint_url=moto.endpoint, region_name="us-east-1")
        self.endpoint = moto.endpoint

    def env(self) -> dict[str, str]:  # a bare key: the SDKAppID comes from the environment
        return {"AWS_ENDPOINT_URL": self.endpoint, "IM_SDKAPPID": str(APP)}

    def put(self, key: str) -> None:
        self.put_value(key)

    def put_value(self, value: str) -> None:
        self.client.put_parameter(Name="/timpush/app-key", Value=value, Type="SecureString", Overwrite=True)

    def delete(self) -> None:
        self.client.delete_parameter(Name="/timpush/app-key")

    def fetches(self) -> int:
        return self.moto.count("ssm.GetParameter")

    def take_down(self) -> None:
        self.endpoint = f"http://127.0.0.1:{free_port()}"


class TencentStore:
    source = "tencent-ssm:ap-guangzhou/im-app-key"

    def __init__(self, fake: FakeTencentSSM) -> None:
        self.fake = fake
        self.versions = 0

    def env(self) -> dict[str, str]:
        return {"TENCENTCLOUD_SSM_ENDPOINT": self.fake.endpoint, "TENCENTCLOUD_SECRETID": TC_ID,
                "TENCENTCLOUD_SECRETKEY": TC_KEY}

    def put(self, key: str) -> None:
        self.put_value(json.dumps({"SDKAppID": APP, "Key": key}))

    def put_value(self, value: str) -> None:  # a new version each time; the newest is read
        self.versions += 1
        self.fake.put_secret("im-app-key", f"v{self.versions}", value)

    def delete(self) -> None:
        self.fake.delete_secret("im-app-key")

    def fetches(self) -> int:
        return self.fake.count("GetSecretValue")

    def take_down(self) -> None:
        self.fake.stop()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, moto: MotoServer, monkeypatch: pytest.MonkeyPatch,
          tmp_path: Path) -> Iterator[Store]:
    for name, value in DUMMY_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_SSM",
                 "TENCENTCLOUD_SESSIONTOKEN", "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    if request.param == "tencent-ssm":
        with FakeTencentSSM(credentials={TC_ID: TC_KEY}) as fake:
            yield TencentStore(fake)
        return
    moto.reset()
    yield SecretsManagerStore(moto) if request.param == "aws-secretsmanager" else ParameterStore(moto)


def emulator_for(key: str, port: int = 0, app: int = APP) -> Emulator:
    settings = EmulatorSettings(sdkappid=app, key=key, admins=(ADMIN,), rate_limit=0, first_task_id=FIRST_TASK)
    return Emulator(settings, port=port).start()


def add_tasks(emu: Emulator, key: str, count: int = 3, app: int = APP) -> list[int]:
    """All-type tasks from FIRST_TASK on, signed with ``key`` (the emulator's key of the moment)."""
    creds = client.Credentials(app, ADMIN, generate(app, key, ADMIN))
    body = {"Sdkappid": app, "Type": "All", "SchedAt": "2031-06-15 14:00:00", "Content": {"From_Account": ADMIN}}
    results = [client.call(emu.url, "add_sched_task", body, creds) for _ in range(count)]
    assert all(r.ok and r.body for r in results), results
    return [int(r.body["TaskID"]) for r in results if r.body]


def use(store: Store, emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Configure the handler (a cold start): the key only in the store, dead letters in a file."""
    dead = tmp_path / "dead.jsonl"
    configure(monkeypatch, {"IM_SECRET_SOURCE": store.source, "IM_ENDPOINT": emu.url, "IM_RATE_LIMIT": "0",
                            "DEAD_LETTER": f"file:{dead}", **store.env()})
    return dead


def invoke(event: Any) -> Any:
    return lambda_handler(event, LocalContext(timeout_seconds=30))


def mod(task: int, minute: int = 0) -> dict[str, Any]:
    return {"TaskID": task, "Type": "All", "SchedAt": f"2031-07-01 10:{minute:02d}:00"}


def test_modifications_succeed_with_the_key_from_the_store(store: Store, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the key in the store and nowhere else
    store.put(KEY)
    emu = emulator_for(KEY)
    try:
        tasks = add_tasks(emu, KEY)
        dead = use(store, emu, tmp_path, monkeypatch)
        # When three modifications arrive in one payload, then one more from a queue
        result = invoke([mod(task, i) for i, task in enumerate(tasks)])
        queued = invoke(sqs_event([sqs_record(json.dumps(mod(tasks[0], 9)))]))
        # Then all are applied, signed with the stored key, and the secret was fetched once
        assert (result["succeeded"], result["dead_lettered"], failed_ids(queued)) == (3, 0, [])
        assert [r["code"] for r in modify_requests(emu)] == [0, 0, 0, 0]
        assert [t["SchedAt"] for t in emu.tasks()] == ["2031-07-01 10:09:00", "2031-07-01 10:01:00",
                                                       "2031-07-01 10:02:00"]
        assert store.fetches() == 1 and dead_letters(dead) == []
    finally:
        emu.stop()


def test_rotation_recovers_within_one_invocation(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    # Given a warm handler that has the old key cached and has signed with it
    store.put(KEY)
    old = emulator_for(KEY)
    [task] = add_tasks(old, KEY, 1)
    use(store, old, tmp_path, monkeypatch)
    assert invoke(mod(task, 1))["succeeded"] == 1
    # When the key is rotated: the store and the IM app (the emulator, back on its port) now hold the new one
    port = int(old.url.rsplit(":", 1)[1])
    old.stop()
    store.put(ROTATED)
    new = emulator_for(ROTATED, port)
    try:
        assert add_tasks(new, ROTATED, 1) == [task]
        caplog.set_level(logging.INFO)
        result = invoke(mod(task, 2))
        # Then the old signature is refused, the secret re-fetched, and the retry succeeds, all in this invocation
        assert result["succeeded"] == 1, result
        assert [r["code"] for r in modify_requests(new)] == [70009, 0]
        assert new.tasks()[0]["SchedAt"] == "2031-07-01 10:02:00"
        assert store.fetches() == 2  # the cold start's, and the forced one
        assert [getattr(r, "rotated", None) for r in caplog.records if r.message == "secret re-fetched"] == [True]
        # And the next modification goes out signed with the new key straight away
        assert invoke(mod(task, 3))["succeeded"] == 1 and modify_requests(new)[-1]["code"] == 0
        assert len(modify_requests(new)) == 3 and store.fetches() == 2
    finally:
        new.stop()


def check_unavailable(store: Store, dead: Path, emu: Emulator, task: int, http_status: int, what: str) -> None:
    """-5 (retryable) everywhere: direct dead-letters, SQS keeps the message, HTTP answers ``http_status``."""
    # Direct: dead-lettered with -5, class retryable, naming the secret and not its value
    result = invoke(mod(task))
    assert [(r["ErrorCode"], r["outcome"]) for r in result["results"]] == [(-5, "dead_lettered")]
    [letter] = dead_letters(dead)
    assert (letter["error"]["code"], letter["error"]["class"], letter["error"]["origin"]) == (-5, "retryable", "local")
    assert f"secret {store.source} {what}" in letter["error"]["info"]
    assert letter["request"] == mod(task) and json.loads(letter["raw"]) == mod(task)
    # SQS: left for redelivery, not dead-lettered; on its last delivery it is
    body = json.dumps(mod(task))
    first, last = sqs_record(body, 1), sqs_record(body, 5)
    assert failed_ids(invoke(sqs_event([first]))) == [first["messageId"]]
    assert len(dead_letters(dead)) == 1
    assert failed_ids(invoke(sqs_event([last]))) == []
    assert [d["source"]["id"] for d in dead_letters(dead)][1:] == [last["messageId"]]
    # HTTP: answered, never dead-lettered
    answer = invoke(http_event(f"/sched-tasks/{task}", json.dumps({"Type": "All", "SchedAt": "2031-07-01 10:00:00"})))
    assert answer["statusCode"] == http_status and json.loads(answer["body"])["ErrorCode"] == -5
    assert len(dead_letters(dead)) == 2
    assert modify_requests(emu) == []  # nothing was sent unsigned or half-signed


def test_missing_secret_is_retryable_and_a_500_over_http(store: Store, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store.put(KEY)
    store.delete()
    emu = emulator_for(KEY)
    try:
        [task] = add_tasks(emu, KEY, 1)
        emu.clear_requests()
        dead = use(store, emu, tmp_path, monkeypatch)
        check_unavailable(store, dead, emu, task, 500, "not found")
    finally:
        emu.stop()


def test_store_down_is_retryable_and_a_503_over_http(store: Store, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store.put(KEY)
    store.take_down()
    emu = emulator_for(KEY)
    try:
        [task] = add_tasks(emu, KEY, 1)
        emu.clear_requests()
        dead = use(store, emu, tmp_path, monkeypatch)
        check_unavailable(store, dead, emu, task, 503, "could not be fetched")
    finally:
        emu.stop()


APP_B, KEY_B = 1400000002, "tp-e2e-second-app-key-3f2e1d0c9b8a7f6e"


def test_one_secret_holding_two_apps_rotates_one_apps_key(store: Store, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    # Given two apps, each on its own emulator with its own key, both held by one secret as {"apps": [...]}
    first, second = emulator_for(KEY), emulator_for(KEY_B, app=APP_B)
    try:
        [task_a], [task_b] = add_tasks(first, KEY, 1), add_tasks(second, KEY_B, 1, APP_B)
        app_b = {"SDKAppID": APP_B, "Key": KEY_B, "Endpoint": second.url}
        store.put_value(json.dumps({"apps": [{"SDKAppID": APP, "Key": KEY, "Endpoint": first.url}, app_b]}))
        env = {name: value for name, value in store.env().items() if name != "IM_SDKAPPID"}
        configure(monkeypatch, {"IM_SECRET_SOURCE": store.source, "IM_RATE_LIMIT": "0",
                                "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}", **env})
        both = [{**mod(task_a, 1), "Sdkappid": APP}, {**mod(task_b, 1), "Sdkappid": APP_B}]
        assert invoke(both)["succeeded"] == 2
        # When app A's key is rotated: the secret and A's IM app (its emulator, back on its port) hold the new one
        port = int(first.url.rsplit(":", 1)[1])
        first.stop()
        first = emulator_for(ROTATED, port)
        assert add_tasks(first, ROTATED, 1) == [task_a]
        store.put_value(json.dumps({"apps": [{"SDKAppID": APP, "Key": ROTATED, "Endpoint": first.url}, app_b]}))
        caplog.set_level(logging.INFO)
        result = invoke([{**mod(task_a, 2), "Sdkappid": APP}, {**mod(task_b, 2), "Sdkappid": APP_B}])
        # Then A's old signature is refused once, the secret re-fetched and A's retry signed with the new key;
        # B, whose key did not change, went out right the first time both times
        assert result["succeeded"] == 2, result
        assert [r["code"] for r in modify_requests(first)] == [70009, 0]
        assert [r["code"] for r in modify_requests(second)] == [0, 0]
        assert store.fetches() == 2
        refetched = [(getattr(r, "sdkappid", None), getattr(r, "rotated", None))
                     for r in caplog.records if r.message == "secret re-fetched"]
        assert refetched == [(APP, True)]
    finally:
        first.stop()
        second.stop()
