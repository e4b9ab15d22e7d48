"""Issue 21's stories for ``timpush send``, each over real files and real servers (moto SQS, the emulator).

Each asserts the exit status, the counts of the summary line and what reached the server.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handler import runtime
from handler.deadletter import sqs as deadletter_sqs
from tests.fakes.moto_server import DUMMY_ENV, MotoServer
from tests.fakes.moto_sqs import MotoSqs, free_port
from tests.support.im import APP, KEY, add_task, dead_letters, get_task, modify_requests
from timpush.cli import main
from timpush.emulator import Emulator

pytestmark = pytest.mark.integration

FUTURE = "2031-06-15 14:00:00"


def _write(tmp_path: Path, text: str, name: str = "campaign.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _numbered(tmp_path: Path, count: int) -> Path:
    return _write(tmp_path, "TaskID,Type,SchedAt\n" + "".join(f"{3000 + n},All,{FUTURE}\n" for n in range(count)))


def _task_ids(server: MotoSqs, url: str) -> list[int]:
    return sorted(json.loads(m["Body"])["TaskID"] for m in server.drain(url))


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """moto's SQS counting the calls it answers."""
    server = MotoServer()
    server.start()
    for name, value in {**DUMMY_ENV, "AWS_ENDPOINT_URL": server.endpoint}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS", raising=False)
    monkeypatch.setattr("timpush.runctl.RETRY_PAUSE", 0.01)
    deadletter_sqs.forget_clients()
    yield server
    deadletter_sqs.forget_clients()
    server.stop()


# --- 1. an unclosed quote swallows the rest of the file -----------------------------------------------


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["run", "dry-run"])
def test_1_an_unclosed_quote_refuses_the_whole_file_and_nothing_is_sent(
    handler_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], dry_run: list[str]
) -> None:
    task = add_task(handler_env)
    path = _write(tmp_path, "TaskID,Type,SchedAt,Title\n"
                            f"{task},All,{FUTURE},Fine\n"
                            f'{task},All,{FUTURE},"Opens and never closes\n'
                            f"{task},All,{FUTURE},Swallowed\n")
    assert main(["send", "--from", str(path), "--to", "direct", "--without-store", *dry_run]) == 2
    err = capsys.readouterr().err
    assert f"{path}: line 3: the row starting here does not parse" in err and "nothing was sent" in err
    assert modify_requests(handler_env) == []
    assert get_task(handler_env, task)["Content"]["OfflinePushInfo"]["Title"] == "t"


def test_1_a_stray_quote_is_refused_not_changed(aws_queue: tuple[MotoSqs, str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    sqs, work = aws_queue
    path = _write(tmp_path, f'TaskID,Type,SchedAt,Title\n1,All,{FUTURE},"Say "hi" today"\n')
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}"]) == 2
    assert "line 2: the row starting here does not parse" in capsys.readouterr().err
    assert sqs.count(work) == 0


@pytest.fixture
def aws_queue(sqs_env: MotoSqs) -> tuple[MotoSqs, str]:
    return sqs_env, sqs_env.create_queue("work")


# --- 2. everything failed, yet "done" and exit 0 -----------------------------------------------------------


def test_2_every_row_refused_by_the_server_is_counted_failed_and_exits_1(
    handler_env: Emulator, dead_letter_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "TaskID,Type,SchedAt\n" + "".join(f"{n},All,{FUTURE}\n" for n in (91, 92, 93)))
    assert main(["send", "--from", str(path), "--to", "direct", "--without-store"]) == 1
    out, err = capsys.readouterr()
    assert "0 succeeded, 0 superseded, 3 failed, 0 skipped, 0 not sent; to direct" in out
    assert all(f"{path}:{line}: TaskID {task}:" in err for line, task in ((2, 91), (3, 92), (4, 93)))
    assert len(modify_requests(handler_env)) == 3  # each reached the server
    assert len(dead_letters(dead_letter_file)) == 3


# --- 3. validation checks the app --------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["direct", "sqs"])
def test_3_with_several_apps_a_row_without_sdkappid_is_refused_before_sending(
    handler_env: Emulator, sqs_env: MotoSqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], target: str
) -> None:
    work = sqs_env.create_queue("work")
    apps = [{"SDKAppID": APP, "Key": KEY, "Endpoint": handler_env.url},
            {"SDKAppID": 1400000777, "Key": "other-key", "Endpoint": handler_env.url}]
    monkeypatch.setenv("IM_APPS", json.dumps(apps))
    for name in ("IM_SDKAPPID", "IM_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    runtime.reset()
    path = _write(tmp_path, f"TaskID,Type,SchedAt,Sdkappid\n1,All,{FUTURE},{APP}\n2,All,{FUTURE},\n")
    to, store = ("direct", ["--without-store"]) if target == "direct" else (f"sqs:{work}", [])
    for extra in (["--dry-run"], []):
        assert main(["send", "--from", str(path), "--to", to, *store, *extra]) == 2
        err = capsys.readouterr().err
        assert f"{path}:3: invalid: Sdkappid: required: this deployment serves several apps" in err
    assert modify_requests(handler_env) == [] and sqs_env.count(work) == 0
    runtime.reset()


# --- 4. an error that cannot get better stops the run at once ----------------------------------------------


def test_4_no_such_queue_stops_at_the_first_batch_with_the_line_to_resume_from(
    counted: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = counted
    path = _numbered(tmp_path, 500)
    gone = f"{server.endpoint}/123456789012/no-such-queue"
    assert main(["send", "--from", str(path), "--to", f"sqs:{gone}"]) == 1
    out, err = capsys.readouterr()
    assert server.count("AmazonSQS.SendMessageBatch") == 1  # not retried, not tried for the other 49 batches
    assert "0 succeeded, 0 superseded, 0 failed, 0 skipped, 500 not sent" in out
    assert err.count("no such queue") == 1
    assert f"to resume from line 2: timpush send --from {path} --to sqs:{gone} --start-line 2" in err


def test_4_no_credentials_and_no_region_stop_before_anything_is_sent(
    aws_queue: tuple[MotoSqs, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, work = aws_queue
    path = _numbered(tmp_path, 30)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata to ask on a laptop
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    deadletter_sqs.forget_clients()
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}"]) == 1
    assert "no AWS credentials" in capsys.readouterr().err
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    deadletter_sqs.forget_clients()
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}"]) == 1
    out, err = capsys.readouterr()
    assert "no AWS region" in err and "30 not sent" in out
    assert sqs.count(work) == 0
    deadletter_sqs.forget_clients()


def test_4_an_unreachable_endpoint_is_retried_briefly_then_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", down)
    monkeypatch.setattr("timpush.runctl.RETRY_PAUSE", 0.01)
    deadletter_sqs.forget_clients()
    assert main(["send", "--from", str(_numbered(tmp_path, 25)), "--to", f"sqs:{down}/1/work"]) == 1
    out, err = capsys.readouterr()
    assert "25 not sent" in out and err.count("stopped:") == 1 and "--start-line 2" in err
    deadletter_sqs.forget_clients()


# --- 8. Ctrl-C: exact counts, a batch in flight counted by what SQS answered --------------------------------


def ctrl_c_at_the_second_batch(monkeypatch: pytest.MonkeyPatch, times: int = 1) -> None:
    """Ctrl-C (``times`` over) when the second SQS batch call is made; the call itself then goes on."""
    real = deadletter_sqs.Queue.send
    calls: list[int] = []

    def send(self: deadletter_sqs.Queue, messages: Any) -> set[int]:
        calls.append(len(messages))
        if len(calls) == 2:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
        return real(self, messages)

    monkeypatch.setattr(deadletter_sqs.Queue, "send", send)


def test_8_ctrl_c_during_a_batch_counts_it_by_what_sqs_answered(
    aws_queue: tuple[MotoSqs, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, work = aws_queue
    ctrl_c_at_the_second_batch(monkeypatch)  # while it is on its way
    path = _numbered(tmp_path, 37)
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}"]) == 130
    out, err = capsys.readouterr()
    assert _task_ids(sqs, work) == list(range(3000, 3020))  # the batch in flight reached the queue...
    assert "20 succeeded, 0 superseded, 0 failed, 0 skipped, 17 not sent" in out  # ...and is counted so
    assert "interrupted" in err and "--start-line 22" in err


def test_8_a_second_ctrl_c_stops_at_once_and_says_the_batch_in_flight_is_uncertain(
    aws_queue: tuple[MotoSqs, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, work = aws_queue
    ctrl_c_at_the_second_batch(monkeypatch, times=2)  # twice, before it leaves
    assert main(["send", "--from", str(_numbered(tmp_path, 37)), "--to", f"sqs:{work}"]) == 130
    out, err = capsys.readouterr()
    assert _task_ids(sqs, work) == list(range(3000, 3010))
    assert "10 succeeded, 0 superseded, 0 failed, 0 skipped, 27 not sent" in out
    assert "may or may not have arrived" in err and "--start-line 12" in err


# --- 9. the shapes a user plausibly has ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (json.dumps([{"TaskID": 1, "Type": "All", "SchedAt": "2031-06-16 09:00"},
                     {"TaskID": 2, "Type": "All", "SchedAt": FUTURE}], indent=2), "mods.json"),
        (json.dumps({"modifications": [{"TaskID": 1, "Type": "All", "SchedAt": "2031-06-16 09:00"},
                                       {"TaskID": 2, "Type": "All", "SchedAt": FUTURE}]}), "mods.jsonl"),
        (f"TaskID;Type;SchedAt;\n1;All;2031-06-16 09:00;\n2;All;{FUTURE};\n", "excel-de.csv"),
    ],
    ids=["pretty-array", "modifications", "semicolons"],
)
def test_9_input_shapes_are_read(aws_queue: tuple[MotoSqs, str], tmp_path: Path, text: str, name: str) -> None:
    sqs, work = aws_queue
    assert main(["send", "--from", str(_write(tmp_path, text, name)), "--to", f"sqs:{work}"]) == 0
    bodies = sorted((json.loads(m["Body"]) for m in sqs.drain(work)), key=lambda b: b["TaskID"])
    assert [b["SchedAt"] for b in bodies] == ["2031-06-16 09:00:00", FUTURE]  # no seconds: :00


def test_9_a_gbk_export_is_refused_with_a_hint(aws_queue: tuple[MotoSqs, str], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    sqs, work = aws_queue
    path = tmp_path / "gbk.csv"
    path.write_bytes(f"TaskID,Type,SchedAt,Title\n1,All,{FUTURE},春季大促\n".encode("gbk"))
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}"]) == 2
    assert "looks like GBK/GB18030" in capsys.readouterr().err
    assert sqs.count(work) == 0


# --- 10. smaller -------------------------------------------------------------------------------------------


def test_10_direct_dry_run_needs_the_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("IM_SECRET_KEY", "IM_SECRET_SOURCE", "IM_APPS", "IM_SDKAPPID"):
        monkeypatch.delenv(name, raising=False)
    runtime.reset()
    assert main(["send", "--from", str(_numbered(tmp_path, 2)), "--to", "direct", "--without-store", "--dry-run"]) == 2
    assert "--to direct needs the handler's environment" in capsys.readouterr().err
    runtime.reset()


def test_10_skip_invalid_with_every_row_invalid_exits_2(aws_queue: tuple[MotoSqs, str], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    sqs, work = aws_queue
    path = _write(tmp_path, "TaskID,Type,SchedAt\n1,Al,2031-01-01 00:00:00\n2,All,2001-01-01 00:00:00\n")
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}", "--skip-invalid"]) == 2
    out, err = capsys.readouterr()
    assert "0 succeeded, 0 superseded, 0 failed, 2 skipped, 0 not sent" in out
    assert "nothing to send: every row is invalid" in err
    assert sqs.count(work) == 0


def test_10_fifo_resend_goes_through_and_a_given_dedup_id_is_said_to_drop_repeats(
    aws_queue: tuple[MotoSqs, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, _ = aws_queue
    work = sqs.create_queue("work.fifo")
    path = _numbered(tmp_path, 3)
    for _ in range(2):  # a deliberate re-send: fresh deduplication ids each run
        assert main(["send", "--from", str(path), "--to", f"sqs:{work}"]) == 0
    assert len(sqs.drain(work)) == 6
    for _ in range(2):  # the same --dedup-id within 5 minutes: SQS drops the repeats, and we said it would
        assert main(["send", "--from", str(path), "--to", f"sqs:{work}", "--dedup-id", "campaign-7"]) == 0
    assert len(sqs.drain(work)) == 3
    assert "SQS drops, without saying so, a row this id already sent in the last 5 minutes" in (
        capsys.readouterr().err)


def test_10_help_says_the_environment_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("send", "redrive"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "environment:" in out and "AWS_REGION" in out and "IM_SECRET_KEY" in out
        assert "exit status:" in out and "130" in out


def test_start_line_resumes_where_a_stopped_run_left_off(aws_queue: tuple[MotoSqs, str], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    sqs, work = aws_queue
    assert main(["send", "--from", str(_numbered(tmp_path, 25)), "--to", f"sqs:{work}", "--start-line", "22"]) == 0
    assert _task_ids(sqs, work) == list(range(3020, 3025))  # lines 22..26
    assert "5 succeeded, 0 superseded, 0 failed, 0 skipped, 0 not sent" in capsys.readouterr().out


def test_without_an_im_configuration_the_queue_is_loaded_and_the_unchecked_app_is_said(
    aws_queue: tuple[MotoSqs, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, work = aws_queue
    for name in ("IM_SDKAPPID", "IM_SECRET_KEY", "IM_APPS", "IM_SECRET_SOURCE"):
        monkeypatch.delenv(name, raising=False)
    runtime.reset()
    assert main(["send", "--from", str(_numbered(tmp_path, 2)), "--to", f"sqs:{work}"]) == 0
    assert "each row's app is not checked here" in capsys.readouterr().err
    assert sqs.count(work) == 2
    runtime.reset()
