"""Fixtures for integration tests: the emulator on loopback and the handler's environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from handler import runtime
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
    for name in ("IM_SECRET_SOURCE", "DEAD_LETTER_ROUTES", "IM_MAX_ATTEMPTS", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    runtime.reset()
    yield emulator
    runtime.reset()
