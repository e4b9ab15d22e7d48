"""``timpush redrive`` over real HTTP (moto server, a stub IM API): filters, dry run, interrupt safety."""

from __future__ import annotations

import json
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
def aws(sqs_env: MotoSqs) -> MotoSqs:
    return sqs_env


@pytest.fixture
def im(monkeypatch: pytest.MonkeyPatch) -> Iterator[ImStub]:
    with im_stub() as stub:
        monkeypatch.setenv("IM_SECRET_KEY", "test-key-not-secret")
        monkeypatch.setenv("IM_SDKAPPID", "1400000001")
        monkeypatch.setenv("IM_ENDPOINT", stub.endpoint)
        monkeypatch.setenv("IM_MAX_ATTEMPTS", "1")
        runtime.reset()
        yield stub


def _doc(task_id: int, code: int, sched_at: str = FUTURE, redrives: int = 0) -> dict[str, Any]:
    raw = json.dumps({"TaskID": task_id, "Type": "All", "SchedAt": sched_at})
    outcome = Outcome(Status.FAILED, raw, json.loads(raw), code, "failed", classify(code), Origin.REMOTE, 1)
    return record(outcome, Source("sqs", f"m{task_id}", 1), redrives=redrives)


MIXED = [(1, 90106), (2, 90104), (3, -1), (4, 90110), (5, 70500), (6, 90106), (7, 90104)]


def _write(path: Path, docs: list[dict[str, Any]], garbage: bool = True) -> list[str]:
    lines = [json.dumps(d, separators=(",", ":")) for d in docs]
    if garbage:
        lines.insert(2, "this line is not a record")
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return lines


def _task_ids_in_file(path: Path) -> list[int | None]:
    out: list[int | None] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(json.loads(line)["raw"])["TaskID"])
        except (ValueError, KeyError, TypeError):
            out.append(None)
    return out


def _task_ids_sent(server: MotoSqs, url: str) -> list[int]:
    return sorted(json.loads(m["Body"])["TaskID"] for m in server.drain(url))


def _fill_queue(server: MotoSqs, url: str, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        server.client.send_message(QueueUrl=url, MessageBody=json.dumps(doc))


# --- filters ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "moved"),
    [
        (["--code", "90106", "--code", "-1"], [1, 3, 6]),  # OR within codes
        (["--class", "retryable"], [3, 5]),
        (["--class", "invalid", "--class", "too_late"], [1, 2, 4, 6, 7]),
        (["--class", "too_late", "--code", "90106", "--code", "90104"], [1, 6]),  # AND between kinds
        (["--class", "too_late", "--max", "2"], [1, 4]),
        ([], [1, 2, 3, 4, 5, 6, 7]),
    ],
)
def test_file_to_work_queue_moves_exactly_what_the_filters_choose(
    aws: MotoSqs, tmp_path: Path, filters: list[str], moved: list[int]
) -> None:
    work = aws.create_queue("work")
    path = tmp_path / "dl.jsonl"
    _write(path, [_doc(n, code) for n, code in MIXED])
    assert main(["redrive", "--from", f"file:{path}", "--to", f"sqs:{work}", *filters]) == 0
    assert _task_ids_sent(aws, work) == moved
    order = [1, 2, None, 3, 4, 5, 6, 7]  # the unreadable line is the third
    assert _task_ids_in_file(path) == [n for n in order if n not in moved]


def test_work_queue_message_is_the_raw_body_with_the_redrive_count(aws: MotoSqs, tmp_path: Path) -> None:
    work = aws.create_queue("work.fifo")
    path = tmp_path / "dl.jsonl"
    docs = [_doc(11, -1, redrives=2), _doc(12, -1)]
    _write(path, docs, garbage=False)
    assert main(["redrive", "--from", f"file:{path}", "--to", f"sqs:{work}"]) == 0
    messages = {m["Body"]: m for m in aws.drain(work)}
    assert set(messages) == {d["raw"] for d in docs}
    first = messages[docs[0]["raw"]]
    assert first["MessageAttributes"]["Redrives"] == {"StringValue": "3", "DataType": "Number"}
    assert first["Attributes"]["MessageGroupId"] == "11"
    assert messages[docs[1]["raw"]]["MessageAttributes"]["Redrives"]["StringValue"] == "1"
    assert path.read_text() == ""


def test_queue_to_work_queue_deletes_only_what_moved(aws: MotoSqs) -> None:
    dlq, work = aws.create_queue("dlq"), aws.create_queue("work")
    _fill_queue(aws, dlq, [_doc(n, code) for n, code in MIXED])
    aws.client.send_message(QueueUrl=dlq, MessageBody="not a record")
    assert main(["redrive", "--from", f"sqs:{dlq}", "--to", f"sqs:{work}", "--class", "too_late"]) == 0
    assert _task_ids_sent(aws, work) == [1, 4, 6]
    left = aws.drain(dlq)  # visible at once: released, not hidden until a timeout
    assert len(left) == 5
    assert sorted(json.loads(m["Body"])["error"]["code"] for m in left if m["Body"].startswith("{")) == [
        -1, 70500, 90104, 90104]


def test_queue_source_respects_max(aws: MotoSqs) -> None:
    dlq, work = aws.create_queue("dlq"), aws.create_queue("work")
    _fill_queue(aws, dlq, [_doc(n, -1) for n in range(1, 26)])
    assert main(["redrive", "--from", f"sqs:{dlq}", "--to", f"sqs:{work}", "--max", "12"]) == 0
    assert len(aws.drain(work)) == 12
    assert len(aws.drain(dlq)) == 13


# --- dry run ------------------------------------------------------------------------------------------------


def test_dry_run_changes_nothing_and_lists_what_would_move(
    aws: MotoSqs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dlq, work = aws.create_queue("dlq"), aws.create_queue("work")
    path = tmp_path / "dl.jsonl"
    _write(path, [_doc(n, code) for n, code in MIXED])
    before = path.read_bytes()
    _fill_queue(aws, dlq, [_doc(n, code) for n, code in MIXED])
    assert main(["redrive", "--from", f"file:{path}", "--to", f"sqs:{work}", "--code", "90104", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would move: TaskID=2 code=90104" in out and "would move: TaskID=7 code=90104" in out
    assert "TaskID=1 " not in out
    assert f"2 would move, 6 skipped; nothing changed (dry run) in file:{path}" in out
    assert main(["redrive", "--from", f"sqs:{dlq}", "--to", "direct", "--class", "invalid", "--dry-run"]) == 0
    assert "2 would move, 5 skipped" in capsys.readouterr().out
    assert path.read_bytes() == before
    assert aws.count(work) == 0
    assert len(aws.drain(dlq)) == len(MIXED)  # all still there, all visible


def test_summary_table_counts_by_code(aws: MotoSqs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = aws.create_queue("work")
    path = tmp_path / "dl.jsonl"
    _write(path, [_doc(n, code) for n, code in MIXED])
    assert main(["redrive", "--from", f"file:{path}", "--to", f"sqs:{work}", "--code", "90106"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.splitlines() if line.count("│") == 8}
    # succeeded, superseded, failed, skipped, not sent
    assert rows["90106"] == ["too_late", "2", "0", "0", "0", "0"]
    assert rows["90104"] == ["invalid", "0", "0", "0", "2", "0"]
    assert rows["unreadable"] == ["", "0", "0", "0", "1", "0"]
    assert rows["total"] == ["", "2", "0", "0", "6", "0"]
    assert "2 succeeded, 0 superseded, 0 failed, 6 skipped, 0 not sent; from file:" in out  # the table's totals


# --- interrupt safety ---------------------------------------------------------------------------------------


def _target_dies_after_first_batch(monkeypatch: pytest.MonkeyPatch, server: MotoSqs, url: str,
                                   interrupt: bool) -> None:
    real = deadletter_sqs.Queue.send
    calls: list[int] = []

    def send(self: deadletter_sqs.Queue, messages: Any) -> set[int]:
        calls.append(len(messages))
        if len(calls) == 1:
            return real(self, messages)
        if interrupt:
            raise KeyboardInterrupt
        return real(deadletter_sqs.Queue(url + "-gone"), messages)  # moto answers QueueDoesNotExist

    monkeypatch.setattr(deadletter_sqs.Queue, "send", send)


@pytest.mark.parametrize("interrupt", [False, True], ids=["target-fails", "ctrl-c"])
def test_file_keeps_everything_not_resent_and_a_rerun_finishes(
    aws: MotoSqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt: bool
) -> None:
    work = aws.create_queue("work")
    path = tmp_path / "dl.jsonl"
    lines = _write(path, [_doc(n, -1) for n in range(1, 26)], garbage=False)
    _target_dies_after_first_batch(monkeypatch, aws, work, interrupt)
    # When the run stops after the first batch of ten
    status = main(["redrive", "--from", f"file:{path}", "--to", f"sqs:{work}"])
    assert status == (130 if interrupt else 1)
    # Then the file holds exactly the fifteen not sent, in their order, byte for byte
    assert path.read_text().splitlines() == lines[10:]
    assert _task_ids_sent(aws, work) == list(range(1, 11))
    # And a second run moves the rest
    monkeypatch.undo()
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    assert main(["redrive", "--from", f"file:{path}", "--to", f"sqs:{work}"]) == 0
    assert _task_ids_sent(aws, work) == list(range(11, 26))
    assert path.read_text() == ""


def test_queue_keeps_everything_not_resent(aws: MotoSqs, monkeypatch: pytest.MonkeyPatch) -> None:
    dlq, work = aws.create_queue("dlq"), aws.create_queue("work")
    _fill_queue(aws, dlq, [_doc(n, -1) for n in range(1, 26)])
    _target_dies_after_first_batch(monkeypatch, aws, work, interrupt=False)
    assert main(["redrive", "--from", f"sqs:{dlq}", "--to", f"sqs:{work}"]) == 1
    sent = _task_ids_sent(aws, work)
    left = sorted(json.loads(json.loads(m["Body"])["raw"])["TaskID"] for m in aws.drain(dlq))
    assert len(sent) == 10 and sorted(sent + left) == list(range(1, 26))


def test_lines_appended_during_the_run_are_kept(aws: MotoSqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = aws.create_queue("work")
    path = tmp_path / "dl.jsonl"
    _write(path, [_doc(n, -1) for n in range(1, 4)], garbage=False)
    real = deadletter_sqs.Queue.send

    def send(self: deadletter_sqs.Queue, messages: Any) -> set[int]:
        with path.open("a") as out:  # another writer appends while the run is going
            out.write(json.dumps(_doc(99, 90106)) + "\n")
        return real(self, messages)

    monkeypatch.setattr(deadletter_sqs.Queue, "send", send)
    assert main(["redrive", "--from", f"file:{path}", "--to", f"sqs:{work}"]) == 0
    assert _task_ids_in_file(path) == [99]


# --- direct -------------------------------------------------------------------------------------------------


def test_direct_applies_and_dead_letters_new_failures_after_the_rewrite(
    aws: MotoSqs, im: ImStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file that is also where the configured route sends new failures
    path = tmp_path / "dl.jsonl"
    monkeypatch.setenv("DEAD_LETTER", f"file:{path}")
    runtime.reset()
    im.answers[2] = 90106  # dispatched meanwhile
    _write(path, [_doc(1, -1), _doc(2, -1, redrives=1), _doc(3, -1, sched_at="2001-01-01 00:00:00"),
                  _doc(4, 90104)], garbage=False)
    # When the retryable ones are applied now
    assert main(["redrive", "--from", f"file:{path}", "--to", "direct", "--without-store", "--class", "retryable"]) == 1
    # Then the API saw 1 and 2 (3 was refused locally); the file keeps 4 and gains the new failures, once
    assert sorted(im.seen) == [1, 2]
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [json.loads(d["raw"])["TaskID"] for d in docs] == [4, 2, 3]
    assert [(d["error"]["code"], d.get("redrives")) for d in docs] == [(90104, None), (90106, 2), (90110, 1)]
    assert docs[1]["source"] == {"kind": "redrive", "id": "m2"}


def test_direct_from_a_queue_does_not_reapply_what_it_dead_letters_there(
    aws: MotoSqs, im: ImStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    dlq = aws.create_queue("dlq")
    monkeypatch.setenv("DEAD_LETTER", f"sqs:{dlq}")
    runtime.reset()
    im.answers[2] = 70500  # still failing
    _fill_queue(aws, dlq, [_doc(1, -1), _doc(2, -1)])
    assert main(["redrive", "--from", f"sqs:{dlq}", "--to", "direct", "--without-store"]) == 1  # 2 failed again
    assert sorted(im.seen) == [1, 2]  # each applied once, though 2 came back into the queue being read
    [left] = [json.loads(m["Body"]) for m in aws.drain(dlq)]
    assert (left["error"]["code"], left["redrives"], json.loads(left["raw"])["TaskID"]) == (70500, 1, 2)


def test_direct_keeps_the_original_when_the_new_dead_letter_cannot_be_written(
    aws: MotoSqs, im: ImStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dl.jsonl"
    monkeypatch.setenv("DEAD_LETTER", f"sqs:{aws.endpoint}/123456789012/gone")
    runtime.reset()
    lines = _write(path, [_doc(5, -1, sched_at="2001-01-01 00:00:00"), _doc(6, -1)], garbage=False)
    assert main(["redrive", "--from", f"file:{path}", "--to", "direct", "--without-store"]) == 1
    assert path.read_text().splitlines() == [lines[0]]  # 6 succeeded and left; 5 failed again, kept


# --- usage ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--from", "file:missing.jsonl", "--to", "direct"],
        ["--from", "s3:bucket", "--to", "direct"],
        ["--from", "file:x", "--to", "ftp:x"],
        ["--from", "sqs:http://127.0.0.1:1/1/q", "--to", "sqs:http://127.0.0.1:1/1/q"],
    ],
)
def test_bad_arguments_exit_2(aws: MotoSqs, tmp_path: Path, argv: list[str],
                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x").write_text("")
    assert main(["redrive", *argv]) == 2
    assert "timpush redrive:" in capsys.readouterr().err


def test_direct_without_configuration_exits_2(aws: MotoSqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("IM_SECRET_KEY", "IM_SDKAPPID"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "dl.jsonl"
    _write(path, [_doc(1, -1)])
    assert main(["redrive", "--from", f"file:{path}", "--to", "direct", "--without-store"]) == 2
    assert "IM_SECRET_KEY" in capsys.readouterr().err


def test_direct_applies_each_record_once_per_run_however_often_it_was_written(
        aws: MotoSqs, im: ImStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a dead letter written twice (a redelivery after a partial failure writes it again, at another time)
    # beside another record, in a file and in a queue
    first = _doc(21, -1)
    again = {**first, "failed_at": "2030-06-01T09:30:00Z"}
    path = tmp_path / "dead.jsonl"
    _write(path, [first, _doc(22, -1), again], garbage=False)
    # When it is redriven now
    assert main(["redrive", "--from", f"file:{path}", "--to", "direct", "--without-store"]) == 0
    # Then the record is applied once; its copy is left in the source for a later run
    assert sorted(im.seen) == [21, 22]
    assert "2 succeeded, 0 superseded, 0 failed, 1 skipped, 0 not sent" in capsys.readouterr().out
    assert _task_ids_in_file(path) == [21]
    dlq = aws.create_queue("twice")
    _fill_queue(aws, dlq, [first, again])
    im.seen.clear()
    assert main(["redrive", "--from", f"sqs:{dlq}", "--to", "direct", "--without-store"]) == 0
    assert im.seen == [21]
