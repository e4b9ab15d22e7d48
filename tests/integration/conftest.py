"""Fixtures for integration tests: the emulator on loopback and the handler's environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from handler import runtime
from handler.deadletter import sqs as deadletter_sqs
from tests.fakes.moto_server import MotoServer
from tests.fakes.moto_sqs import MotoSqs, moto_sqs
from tests.support.homes import ALL, SHARED, Homes, entered
from tests.support.im import ADMIN, APP, KEY
from timpush.emulator import Emulator, EmulatorSettings


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=7)) as emu:
        yield emu


@pytest.fixture
def dead_letter_file(tmp_path: Path) -> Path:
    return tmp_path / "dead-letters.jsonl"


@pytest.fixture
def handler_env(emulator: Emulator, dead_letter_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The handler configured for the emulator; the process's cached runtime is rebuilt around it."""
    for name, value in {
        "IM_ENDPOINT": emulator.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN,
        "DEAD_LETTER": f"file:{dead_letter_file}", "IM_RATE_LIMIT": "5", "NO_PROXY": "127.0.0.1,localhost",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("IM_SECRET_SOURCE", "DEAD_LETTER_ROUTES", "IM_MAX_ATTEMPTS", "AWS_LAMBDA_FUNCTION_NAME", "IM_APPS"):
        monkeypatch.delenv(name, raising=False)
    runtime.reset()
    yield emulator
    runtime.reset()


@pytest.fixture(scope="module")
def sqs_server() -> Iterator[MotoSqs]:
    """moto in server mode, one per module; each test gets it reset by ``sqs_env``."""
    with moto_sqs() as running:
        yield running


@pytest.fixture
def sqs_env(sqs_server: MotoSqs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[MotoSqs]:
    """An empty moto SQS in the environment, no dead-letter configuration, cwd in tmp_path."""
    sqs_server.reset()
    for name, value in sqs_server.env.items():
        monkeypatch.setenv(name, value)
    for name in ("DEAD_LETTER", "DEAD_LETTER_ROUTES", "WORK_QUEUE", "IM_SECRET_SOURCE", "AWS_ENDPOINT_URL_SQS",
                 "AWS_LAMBDA_FUNCTION_NAME", "IM_APPS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IM_SECRET_KEY", "test-key-not-secret")
    monkeypatch.setenv("IM_SDKAPPID", "1400000001")
    monkeypatch.chdir(tmp_path)
    deadletter_sqs.forget_clients()
    runtime.reset()
    yield sqs_server
    runtime.reset()
    deadletter_sqs.forget_clients()


@pytest.fixture
def server(sqs_server: MotoSqs) -> MotoSqs:
    """The module's moto server, by the short name the SQS tests use."""
    return sqs_server


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    """moto in server mode for Secrets Manager and SSM, counting calls; one per module."""
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def homes() -> Iterator[Homes]:
    """Every home of the state store, started once per module (memory, moto's DynamoDB, Redis, a cluster)."""
    with Homes() as running:
        yield running


home = pytest.fixture(params=ALL, name="home")(entered)  # each home in turn, emptied, its variables set
shared = pytest.fixture(params=SHARED, name="shared")(entered)  # the shared homes only (not this process's memory)
