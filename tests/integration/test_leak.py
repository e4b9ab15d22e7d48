"""Leak scan: a distinctive key through every scenario; neither it nor any UserSig may leave the process.

Every sample in events/ runs through the real handler against the emulator (the demo's world and
faults), then the failure paths: auth refusals, dropped connections, timeouts, a server that is gone,
a dead-letter sink that cannot be written, bad configuration, and keys fetched from a secret store
that rotates and then fails. Every UserSig made is recorded (``usersig.generate`` is wrapped). The
scan reads what leaves: log records and their formatted lines at DEBUG, stdout and stderr (EMF
metrics), return values and HTTP answers, every dead-letter file, and exception messages.
"""

from __future__ import annotations

import io
import json
import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from handler import lambda_handler
from handler.im import usersig
from handler.observability import logger as handler_logger
from tests.fakes.tencent_ssm import FakeTencentSSM
from tests.support.im import ADMIN, APP, KEY, add_task
from tests.support.lambda_events import configure, http_event, sqs_event, sqs_record
from timpush.context import LocalContext
from timpush.demo import EVENTS, FAULTS, FIRST_TASK_ID, create_tasks
from timpush.emulator import Emulator, EmulatorSettings, Fault

pytestmark = pytest.mark.integration

ROTATED = "tp-rotated-key-c0ffee5e1f2a3b4c5d6e7f8091a2b3c4"
TC_ID, TC_KEY, TC_TOKEN = "AKIDleakscanid", "tc-leakscan-secret-9d8c7b6a", "tc-leakscan-token-1a2b3c"
MOD = {"TaskID": FIRST_TASK_ID, "Type": "All", "SchedAt": "2031-11-11 11:11:11"}


class Scan:
    """Collects everything that leaves the process during a test, and every UserSig made meanwhile."""

    def __init__(self, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp_path = tmp_path
        self.caplog = caplog
        self.capsys = capsys
        self.sigs: list[str] = []
        self.outputs: list[str] = []
        self.lines = io.StringIO()  # the handler's own log lines, formatted as on Lambda (extras included)

    def invoke(self, event: Any, timeout: float = 30.0) -> Any:
        """Run the handler; keep its answer, or the exception it raised (message and traceback)."""
        try:
            result = lambda_handler(event, LocalContext(timeout_seconds=timeout))
        except Exception as exc:  # noqa: BLE001 - an escaping exception is output to scan too
            self.outputs.append("".join(traceback.format_exception(exc)))
            return exc
        self.outputs.append(json.dumps(result, default=str, ensure_ascii=False))
        return result

    def recording(self, real: Callable[..., str]) -> Callable[..., str]:
        def generate(*args: Any, **kwargs: Any) -> str:
            sig = real(*args, **kwargs)
            self.sigs.append(sig)
            return sig
        return generate

    def haystack(self) -> str:
        captured = self.capsys.readouterr()
        records = [repr(vars(record)) for record in self.caplog.records]
        letters = [p.read_text(encoding="utf-8") for p in self.tmp_path.rglob("*.jsonl")]
        return "\n".join([captured.out, captured.err, self.caplog.text, self.lines.getvalue(), *records,
                          *letters, *self.outputs])

    def assert_clean(self, *secrets: str) -> str:
        text = self.haystack()
        for secret in secrets:
            assert secret not in text
        assert self.sigs, "no UserSig was made: the scan would prove nothing"
        for sig in set(self.sigs):
            assert sig not in text and sig[-40:] not in text
        assert "usersig=" not in text.lower().replace("usersig=<redacted>", "")
        return text


@pytest.fixture
def scan(tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Scan]:
    found = Scan(tmp_path, caplog, capsys)
    # Every UserSig: the handler's (UserSigCache calls usersig.generate) and the test's own requests'
    monkeypatch.setattr(usersig, "generate", found.recording(usersig.generate))
    monkeypatch.setattr("tests.support.im.generate", found.recording(usersig.generate))
    monkeypatch.setattr("timpush.demo.generate", found.recording(usersig.generate))
    monkeypatch.setattr("handler.im.retry.BACKOFF_BASE", 0.005)
    caplog.set_level(logging.DEBUG)
    previous = logging.getLogger(handler_logger.name).level
    handler_logger.setLevel(logging.DEBUG)
    line_handler = logging.StreamHandler(found.lines)
    line_handler.setFormatter(handler_logger.registered_formatter)
    logging.getLogger(handler_logger.name).addHandler(line_handler)
    yield found
    logging.getLogger(handler_logger.name).removeHandler(line_handler)
    handler_logger.setLevel(previous)


def load(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def emulator_env(emu: Emulator, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"IM_ENDPOINT": emu.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN,
            "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}", "IM_RATE_LIMIT": "0",
            "DEAD_LETTER_ROUTES": json.dumps({"auth": f"file:{tmp_path / 'auth.jsonl'}"}), **extra}


def one_of_each(scan: Scan, mod: dict[str, Any] = MOD, timeout: float = 30.0) -> list[Any]:
    """The modification through each trigger kind: direct, SQS, HTTP."""
    body = json.dumps(mod)
    path = f"/sched-tasks/{mod['TaskID']}"
    return [scan.invoke(mod, timeout), scan.invoke(sqs_event([sqs_record(body)]), timeout),
            scan.invoke(http_event(path, json.dumps({k: v for k, v in mod.items() if k != "TaskID"})), timeout)]


def test_no_key_or_usersig_leaves_through_any_trigger_or_failure(
        scan: Scan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=0, first_task_id=FIRST_TASK_ID,
                                rate_limit=0)
    with Emulator(settings) as emu:
        create_tasks(emu, say=lambda _text: None)
        configure(monkeypatch, emulator_env(emu, tmp_path))
        # Every sample, with the demo's faults armed
        for path in sorted(EVENTS.glob("*.json")):
            emu.clear_faults()
            emu.add_faults(FAULTS.get(path.stem, []))
            scan.invoke(load(path.stem))
        # Auth refused (a bad signature, then an expired one that renews), dropped, not an envelope
        for fault in (Fault(kind="error", code=70009, count=20, api="modify"),
                      Fault(kind="error", code=70001, count=1, api="modify"),
                      Fault(kind="drop", count=20, api="modify"),
                      Fault(kind="not_envelope", count=20, api="modify")):
            emu.clear_faults()
            emu.add_faults([fault])
            one_of_each(scan)
        # A read timeout: the deadline leaves half a second to read
        emu.clear_faults()
        emu.add_faults([Fault(kind="slow", delay=2.0, count=1, api="modify")])
        timed_out = scan.invoke(MOD, timeout=3.0)
        emu.clear_faults()
        # A dead-letter sink that cannot be written: the direct invocation fails loudly
        configure(monkeypatch, emulator_env(emu, tmp_path, DEAD_LETTER=f"file:{tmp_path / 'no' / 'dir.jsonl'}",
                                            DEAD_LETTER_ROUTES=""))
        unwritable = scan.invoke({**MOD, "SchedAt": "2020-01-01 00:00:00"})
        # Bad configuration: the key given twice
        configure(monkeypatch, emulator_env(emu, tmp_path, IM_SECRET_SOURCE="aws-ssm:/im/key"))
        misconfigured = scan.invoke(MOD)
        configure(monkeypatch, emulator_env(emu, tmp_path))
    # The server is gone: connections refused
    down = one_of_each(scan)
    # Then the scenarios happened as intended ...
    assert timed_out["results"][0]["ErrorCode"] == -2
    assert type(unwritable).__name__ == "DeadLetterError" and type(misconfigured).__name__ == "ConfigError"
    assert down[0]["results"][0]["ErrorCode"] == -1 and down[2]["statusCode"] == 502
    text = scan.assert_clean(KEY)
    # ... and the scan read real output of each kind
    for expected in ('"_aws"', "modification succeeded", "modification dead_lettered", "IM refused the admin",
                     "ConnectionError", '"statusCode": 500', "DeadLetterError", "ConfigError", "70009",
                     "usersig=<redacted>", "urllib3"):
        assert expected in text, expected
    assert len(set(scan.sigs)) >= 3  # the first, the renewed one after 70001, the test's own


def test_no_key_or_usersig_leaves_from_a_rotating_secret_store(
        scan: Scan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeTencentSSM(credentials={TC_ID: TC_KEY}, require_token=TC_TOKEN) as ssm, \
            Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), rate_limit=0)) as emu:
        task = add_task(emu, "All")
        mod = {**MOD, "TaskID": task}
        ssm.put_secret("im-app-key", "v1", json.dumps({"SDKAppID": APP, "Key": KEY, "Admin": ADMIN}))
        env = {"IM_ENDPOINT": emu.url, "IM_SECRET_SOURCE": "tencent-ssm:ap-guangzhou/im-app-key",
               "TENCENTCLOUD_SSM_ENDPOINT": ssm.endpoint, "TENCENTCLOUD_SECRETID": TC_ID,
               "TENCENTCLOUD_SECRETKEY": TC_KEY, "TENCENTCLOUD_SESSIONTOKEN": TC_TOKEN,
               "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}", "IM_RATE_LIMIT": "0"}
        configure(monkeypatch, env)
        # Given the key from the store, working
        ok = one_of_each(scan, mod)
        # When the store holds a key the server does not know: 70009, re-fetch, still refused
        ssm.put_secret("im-app-key", "v2", json.dumps({"SDKAppID": APP, "Key": ROTATED}))
        emu.add_faults([Fault(kind="error", code=70009, count=1, api="modify")])
        rotated = one_of_each(scan, mod)
        # When the store is down at the re-fetch, and when the secret is gone
        emu.add_faults([Fault(kind="error", code=70009, count=30, api="modify")])
        ssm.stop()
        store_down = one_of_each(scan, mod)
        ssm.start()
        ssm.delete_secret("im-app-key")
        configure(monkeypatch, env)
        missing = one_of_each(scan, mod)
    assert ok[0]["succeeded"] == 1 and ok[2]["statusCode"] == 200
    assert rotated[0]["results"][0]["ErrorCode"] == 70009  # re-fetched ROTATED, which the server refuses
    assert store_down[0]["results"][0]["ErrorCode"] == 70009 and store_down[2]["statusCode"] == 500
    assert missing[0]["results"][0]["ErrorCode"] == -5 and missing[2]["statusCode"] == 500
    text = scan.assert_clean(KEY, ROTATED, TC_KEY, TC_TOKEN)
    assert "secret re-fetched" in text and "tencent-ssm:ap-guangzhou/im-app-key" in text
