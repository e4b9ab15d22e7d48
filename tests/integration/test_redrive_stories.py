"""Issue 21's stories for ``timpush redrive``: the same counts and exit status as ``timpush send``."""

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
from handler.deadletter.record import Source, record
from handler.im.codes import Origin, classify
from handler.outcome import Outcome, Status
from tests.fakes.im_stub import ImStub, im_stub
from tests.fakes.moto_sqs import MotoSqs
from timpush.cli import main

pytestmark = pytest.mark.integration

FUTURE = "2030-06-15 14:00:00"


@pytest.fixture
def im(sqs_env: MotoSqs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ImStub]:
    with im_stub() as stub:
        monkeypatch.setenv("IM_ENDPOINT", stub.endpoint)
        monkeypatch.setenv("IM_MAX_ATTEMPTS", "1")
        monkeypatch.setenv("DEAD_LETTER", f"file:{tmp_path / 'new-dead-letters.jsonl'}")
        runtime.reset()
        yield stub
        runtime.reset()


def _doc(task_id: int, code: int) -> dict[str, Any]:
    raw = json.dumps({"TaskID": task_id, "Type": "All", "SchedAt": FUTURE})
    outcome = Outcome(Status.FAILED, raw, json.loads(raw), code, "failed", classify(code), Origin.REMOTE, 1)
    return record(outcome, Source("sqs", f"m{task_id}", 1))


def _write(path: Path, task_ids: range, code: int = -1) -> list[str]:
    lines = [json.dumps(_doc(n, code), separators=(",", ":")) for n in task_ids]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return lines


def test_2_everything_failing_again_is_counted_failed_and_exits_1(
    im: ImStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dl.jsonl"
    _write(path, range(1, 4))
    for task in range(1, 4):
        im.answers[task] = 90106  # dispatched meanwhile: every one fails again
    assert main(["redrive", "--from", f"file:{path}", "--to", "direct", "--without-store"]) == 1
    out, err = capsys.readouterr()
    assert "0 succeeded, 0 superseded, 3 failed, 0 skipped, 0 not sent" in out
    assert err.count("failed again (90106") == 3
    assert sorted(im.seen) == [1, 2, 3]
    new = [json.loads(line) for line in (tmp_path / "new-dead-letters.jsonl").read_text().splitlines()]
    assert [(d["error"]["code"], d["redrives"]) for d in new] == [(90106, 1)] * 3
    assert path.read_text() == ""  # each left the source: its new dead letter is where it lives now


def test_4_no_such_queue_stops_at_once_and_the_source_keeps_everything(
    sqs_env: MotoSqs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dl.jsonl"
    lines = _write(path, range(1, 26))
    gone = f"{sqs_env.endpoint}/123456789012/no-such-queue"
    assert main(["redrive", "--from", f"file:{path}", "--to", f"sqs:{gone}"]) == 1
    out, err = capsys.readouterr()
    assert err.count("no such queue") == 1 and "run the same command again to resume" in err
    assert "0 succeeded, 0 superseded, 0 failed, 0 skipped, 10 not sent" in out  # it stopped at the first batch
    assert "15 line(s) not looked at, left in the source" in out
    assert path.read_text().splitlines() == lines


def test_8_ctrl_c_during_a_batch_counts_it_by_what_sqs_answered(
    sqs_env: MotoSqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = sqs_env.create_queue("work")
    path = tmp_path / "dl.jsonl"
    lines = _write(path, range(1, 26))
    real = deadletter_sqs.Queue.send

    def send(self: deadletter_sqs.Queue, messages: Any) -> set[int]:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the first batch is on its way
        return real(self, messages)

    monkeypatch.setattr(deadletter_sqs.Queue, "send", send)
    assert main(["redrive", "--from", f"file:{path}", "--to", f"sqs:{work}"]) == 130
    out, err = capsys.readouterr()
    assert sorted(json.loads(m["Body"])["TaskID"] for m in sqs_env.drain(work)) == list(range(1, 11))
    assert "10 succeeded, 0 superseded, 0 failed, 0 skipped, 0 not sent" in out
    assert "interrupted" in err
    assert path.read_text().splitlines() == lines[10:]  # what reached the queue left the source, the rest stays
