"""``timpush send`` with real files over real HTTP: moto's SQS (standard, FIFO, refusing entries), the emulator."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handler import runtime
from handler.deadletter import sqs as deadletter_sqs
from tests.fakes.moto_sqs import MotoSqs
from tests.fakes.refusing_sqs import RefusingSqs, refusing_sqs
from tests.support.im import add_task, dead_letters, get_task, modify_requests
from timpush.cli import main
from timpush.emulator import Emulator

pytestmark = pytest.mark.integration

FUTURE = "2031-06-15 14:00:00"
PAST = "2020-01-01 00:00:00"
ISSUED = "2025-06-01T08:00:00+08:00"

# A campaign export: line 1 is the header; lines 3 and 5 are invalid (time passed; misspelt Type).
CAMPAIGN = (
    "TaskID,Type,SchedAt,Title,Desc,Content,IssuedAt\n"
    f"101,All,{FUTURE},Spring sale,\"Everything, 20% off\",,2025-06-01T08:00:00+08:00\n"
    f"102,All,{PAST},,,,\n"
    "103,User,,Your order,Shipped,\"{\"\"To_Account\"\": [\"\"alice\"\"]}\",\n"
    f"104,Al,{FUTURE},,,,\n"
    f"105,Tag,2031-06-15T22:00:00+08:00,,,,\n"
)


@pytest.fixture
def aws(sqs_env: MotoSqs) -> MotoSqs:
    return sqs_env


def _write(tmp_path: Path, text: str, name: str = "campaign.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


def _bodies(server: MotoSqs, url: str) -> dict[int, dict[str, object]]:
    """TaskID -> message (body parsed into "Body")."""
    return {json.loads(m["Body"])["TaskID"]: {**m, "Body": json.loads(m["Body"])} for m in server.drain(url)}


# --- validation first ------------------------------------------------------------------------------------


def test_any_invalid_row_and_nothing_is_sent_each_named_by_line(
    aws: MotoSqs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = aws.create_queue("work")
    path = _write(tmp_path, CAMPAIGN, bom=True)
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: invalid: SchedAt: {PAST} is not in the future" in err
    assert f"{path}:5: invalid: Type: expected 'All', 'Tag' or 'User', got 'Al'" in err
    assert ":2:" not in err and ":4:" not in err and ":6:" not in err
    assert aws.count(work) == 0


def test_skip_invalid_sends_the_rest_and_lists_what_it_skipped(
    aws: MotoSqs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = aws.create_queue("work")
    path = _write(tmp_path, CAMPAIGN, bom=True)
    before = datetime.now(UTC)
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}", "--skip-invalid"]) == 0
    out, err = capsys.readouterr()
    assert f"{path}:3: skipped: SchedAt" in err and f"{path}:5: skipped: Type" in err
    assert f"3 succeeded, 0 superseded, 0 failed, 2 skipped, 0 not sent; to sqs:{work}" in out
    sent = _bodies(aws, work)
    assert sorted(sent) == [101, 103, 105]
    # Title/Desc columns fill Content.OfflinePushInfo; Content is JSON; IssuedAt goes as given
    assert sent[101]["Body"] == {"TaskID": 101, "Type": "All", "SchedAt": FUTURE, "IssuedAt": ISSUED, "Content": {
        "OfflinePushInfo": {"Title": "Spring sale", "Desc": "Everything, 20% off"}}}
    assert sent[103]["Body"] == {"TaskID": 103, "Type": "User", "Content": {
        "To_Account": ["alice"], "OfflinePushInfo": {"Title": "Your order", "Desc": "Shipped"}}}
    attributes = {task: m["MessageAttributes"]["IssuedAt"] for task, m in sent.items()}
    assert attributes[101] == {"DataType": "String", "StringValue": "2025-06-01T00:00:00.000Z"}  # in UTC
    stamped = [datetime.fromisoformat(attributes[t]["StringValue"]) for t in (103, 105)]
    assert before <= stamped[0] < stamped[1] <= datetime.now(UTC) + timedelta(seconds=1)  # file order kept


def test_dry_run_validates_and_sends_nothing(aws: MotoSqs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = aws.create_queue("work")
    path = _write(tmp_path, CAMPAIGN)
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}", "--dry-run", "--skip-invalid"]) == 0
    out = capsys.readouterr().out
    assert "would send" in out and "dry run: nothing sent" in out
    assert aws.count(work) == 0
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}", "--dry-run"]) == 2  # as a real run would


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "no modifications"),
        ("TaskID,Type,SchedAt\n\n", "no modifications"),
        ("TaskID,Type,Title\n1,All,x\n", "missing column SchedAt"),
        ("TaskID,Type,SchedAt,SchedAT\n1,All,,x\n", "unknown column 'SchedAT'"),
    ],
)
def test_unusable_input_exits_2_naming_why(
    aws: MotoSqs, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, named: str
) -> None:
    work = aws.create_queue("work")
    path = _write(tmp_path, text)
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}"]) == 2
    assert named in capsys.readouterr().err
    assert aws.count(work) == 0


def test_not_utf8_and_a_bad_target_exit_2(aws: MotoSqs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("TaskID,Type,SchedAt,Title\n1,All,,Café\n".encode("latin-1"))
    assert main(["send", "--from", str(path), "--to", "sqs:http://127.0.0.1:1/q"]) == 2
    assert "not UTF-8 (line 2" in capsys.readouterr().err
    assert main(["send", "--from", str(path), "--to", "work-queue"]) == 2
    assert "--to must be sqs:QUEUE_URL or direct" in capsys.readouterr().err


# --- JSON Lines, stdin, FIFO -----------------------------------------------------------------------------


def test_json_lines_from_stdin_to_a_fifo_queue(
    aws: MotoSqs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = aws.create_queue("work.fifo")
    lines = [json.dumps({"TaskID": 7, "Type": "All", "SchedAt": FUTURE}),
             "",
             json.dumps({"TaskID": "8", "Type": "Tag", "Content": {"Condition": {"TagsOr": ["vip"]}},
                         "IssuedAt": "2025-06-01T08:00:00.25Z"}, ensure_ascii=False),
             json.dumps({"TaskID": 7, "Type": "All", "SchedAt": "2031-07-01 09:00:00"})]
    data = ("\ufeff" + "\n".join(lines) + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert main(["send", "--from", "-", "--to", f"sqs:{work}"]) == 0
    assert "3 succeeded" in capsys.readouterr().out
    messages = aws.drain(work)
    assert [(json.loads(m["Body"])["TaskID"], m["Attributes"]["MessageGroupId"]) for m in messages] == [
        (7, "7"), ("8", "8"), (7, "7")]
    assert len({m["Attributes"]["MessageDeduplicationId"] for m in messages}) == 3
    assert messages[1]["MessageAttributes"]["IssuedAt"]["StringValue"] == "2025-06-01T08:00:00.250Z"


def test_json_lines_name_each_bad_line(aws: MotoSqs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = aws.create_queue("work")
    path = _write(tmp_path, '{"TaskID": 1, "Type": "All", "SchedAt": "2031-01-01 00:00:00"}\n[1, 2]\n{oops\n'
                  '{"TaskID": 2, "Type": "All", "SchedAt": "2031-01-01 00:00:00", "IssuedAt": "yesterday"}\n'
                  '{"TaskID": 3, "Type": "All", "SchedAt": "2031-01-01 00:00:00",'
                  ' "IssuedAt": "2031-01-01T00:00:00Z"}\n',
                  name="mods.jsonl")
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: invalid: expected one modification" in err
    assert f"{path}:3: invalid: not JSON" in err
    assert f"{path}:4: invalid: IssuedAt: expected ISO 8601" in err
    assert f"{path}:5: invalid: IssuedAt: 2031-01-01T00:00:00.000Z is more than 5 minutes in the future" in err
    assert aws.count(work) == 0


# --- batches and refused entries -------------------------------------------------------------------------


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[tuple[MotoSqs, RefusingSqs]]:
    marker, times = request.param
    with refusing_sqs(marker, times) as (sqs, server):
        for name, value in sqs.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_ENDPOINT_URL_SQS", raising=False)
        deadletter_sqs.forget_clients()
        yield sqs, server
        deadletter_sqs.forget_clients()


def _numbered(tmp_path: Path, count: int) -> Path:
    rows = "".join(f"{2000 + n},All,{FUTURE}\n" for n in range(count))
    return _write(tmp_path, "TaskID,Type,SchedAt\n" + rows)


@pytest.mark.parametrize("flaky", [('"TaskID":2013', 1)], indirect=True)
def test_batches_of_ten_and_a_refused_entry_is_retried(
    flaky: tuple[MotoSqs, RefusingSqs], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs, server = flaky
    monkeypatch.setattr("timpush.runctl.RETRY_PAUSE", 0.01)
    work = sqs.create_queue("work")
    assert main(["send", "--from", str(_numbered(tmp_path, 25)), "--to", f"sqs:{work}"]) == 0
    assert server.refused == 1
    assert server.count("AmazonSQS.SendMessageBatch") == 4  # 10 + 10 (one refused) + the retry of one + 5
    assert sorted(json.loads(m["Body"])["TaskID"] for m in sqs.drain(work)) == list(range(2000, 2025))


@pytest.mark.parametrize("flaky", [('"TaskID":2003', 99)], indirect=True)
def test_an_entry_refused_every_time_is_reported_not_sent(
    flaky: tuple[MotoSqs, RefusingSqs], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sqs, server = flaky
    monkeypatch.setattr("timpush.runctl.RETRY_PAUSE", 0.01)
    work = sqs.create_queue("work")
    path = _numbered(tmp_path, 12)
    assert main(["send", "--from", str(path), "--to", f"sqs:{work}"]) == 1
    out, err = capsys.readouterr()
    assert server.refused == 3  # tried three times
    assert f"{path}:5: TaskID 2003: refused by SQS (3 attempts)" in err
    assert "11 succeeded, 0 superseded, 0 failed, 0 skipped, 1 not sent" in out
    assert "to resume from line 5" in err
    assert sorted(json.loads(m["Body"])["TaskID"] for m in sqs.drain(work)) == [
        n for n in range(2000, 2012) if n != 2003]


# --- direct ----------------------------------------------------------------------------------------------


def test_direct_applies_in_file_order_and_dead_letters_failures(
    handler_env: Emulator, dead_letter_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    soon = datetime.fromtimestamp(handler_env.now() + 60, UTC).strftime("%Y-%m-%d %H:%M:%S")
    first, dispatched = add_task(handler_env), add_task(handler_env, sched_at=soon)
    handler_env.advance(120)  # the second task is dispatched; the first still pending
    path = _write(tmp_path, "TaskID,Type,SchedAt,Title,Desc,IssuedAt\n"
                            f"{first},All,2041-06-15 14:00:00,Moved,Later,\n"
                            f"{dispatched},All,2041-06-15 14:00:00,,,\n"
                            f"{first},All,2041-07-01 09:00:00,,,\n"
                            f"{first},All,2041-08-01 09:00:00,,,2025-01-01T00:00:00Z\n")  # older than line 4
    # one row failed: a cron job must see it
    assert main(["send", "--from", str(path), "--to", "direct", "--without-store"]) == 1
    out, err = capsys.readouterr()
    assert "2 succeeded, 1 superseded, 1 failed, 0 skipped, 0 not sent; to direct" in out
    assert f"{path}:3: TaskID {dispatched}: 90106 modify failed: task dispatched (failed)" in err
    assert f"{path}:5:" not in err  # superseded is not a failure: its line only with --verbose
    assert [r["body"]["SchedAt"] for r in modify_requests(handler_env)] == [  # type: ignore[index]
        "2041-06-15 14:00:00", "2041-06-15 14:00:00", "2041-07-01 09:00:00"]
    assert get_task(handler_env, first)["SchedAt"] == "2041-07-01 09:00:00"
    [letter] = dead_letters(dead_letter_file)
    assert letter["error"]["code"] == 90106
    assert letter["source"] == {"kind": "direct", "id": f"timpush-send:{path}:3"}


def test_direct_without_configuration_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("IM_SECRET_KEY", "IM_SECRET_SOURCE"):
        monkeypatch.delenv(name, raising=False)
    runtime.reset()
    path = _write(tmp_path, f"TaskID,Type,SchedAt\n1,All,{FUTURE}\n")
    assert main(["send", "--from", str(path), "--to", "direct", "--without-store"]) == 2
    assert "--to direct needs the handler's environment: IM_SECRET_KEY" in capsys.readouterr().err
    runtime.reset()
