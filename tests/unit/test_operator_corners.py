"""The operators' tools tell the truth in their corners (issue 27): the right variable, the right cause, the exit
code their ``--help`` states, and a ``--help`` that states what the code does. Each case failed before.

In-process (``timpush.cli.main``) and before any request: nothing here opens a socket.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from handler import runtime
from handler.model import MAX_DEPTH
from timpush.cli import main
from timpush.send.rows import InputError, read

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = "2031-06-15 14:00:00"
HANDLER_VARS = ("IM_SECRET_KEY", "IM_SDKAPPID", "IM_SECRET_SOURCE", "IM_APPS", "IM_ADMIN", "DEAD_LETTER",
                "DEAD_LETTER_ROUTES", "IM_STATE_STORE", "WORK_QUEUE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in HANDLER_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # nothing piped
    runtime.reset()
    yield
    runtime.reset()


def run(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as stop:  # argparse: --help, or a usage error
        return int(stop.code or 0)


def rows(tmp_path: Path, text: str, name: str = "rows.csv") -> list[tuple[int, str | None]]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return [(row.line, row.problem) for row in read(str(path), apps=None, now=NOW)]


# --- usersig -----------------------------------------------------------------------------------------------


def test_usersig_without_a_key_names_im_secret_key(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IM_SDKAPPID", "1400000001")  # a good one: it was named as "not a positive integer"
    assert run("usersig") == 2
    err = capsys.readouterr().err
    assert err == "timpush usersig: no key: set IM_SECRET_KEY (or pipe the key on stdin)\n"


def test_usersig_names_each_thing_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("usersig") == 2
    assert capsys.readouterr().err == ("timpush usersig: no key: set IM_SECRET_KEY (or pipe the key on stdin); "
                                       "no SDKAppID: set IM_SDKAPPID (or use --sdkappid)\n")


# --- send: Title and Desc go together ------------------------------------------------------------------------


def test_a_csv_row_with_a_title_and_no_desc_is_refused_by_line(tmp_path: Path) -> None:
    text = (f"TaskID,Type,SchedAt,Title,Desc\n1,All,{LATER},Spring sale,\n2,All,{LATER},,Everything off\n"
            f"3,All,{LATER},Both,Given\n4,All,{LATER},,\n")
    found = rows(tmp_path, text)
    assert found[0] == (2, "Desc: empty while Title is given: Title and Desc go together (the server may replace "
                           "OfflinePushInfo as a whole, and the push would go out with an empty Desc)")
    assert found[1][0] == 3 and str(found[1][1]).startswith("Title: empty while Desc is given")
    assert found[2:] == [(4, None), (5, None)]


def test_a_json_lines_row_with_one_of_title_and_desc_is_refused_by_line(tmp_path: Path) -> None:
    lines = [{"TaskID": 1, "Type": "All", "Content": {"OfflinePushInfo": {"Title": "t", "Desc": "d"}}},
             {"TaskID": 2, "Type": "All", "Content": {"OfflinePushInfo": {"Desc": "d"}}},
             {"TaskID": 3, "Type": "All", "Content": {"OfflinePushInfo": {"Title": "t", "Desc": ""}}}]
    found = rows(tmp_path, "\n".join(json.dumps(line) for line in lines) + "\n", "rows.jsonl")
    assert found[0] == (1, None)
    assert str(found[1][1]).startswith("Title: empty while Desc is given")
    assert str(found[2][1]).startswith("Desc: empty while Title is given")


# --- send: damaged and odd input ------------------------------------------------------------------------------


def test_a_cell_larger_than_the_csv_limit_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        rows(tmp_path, f"TaskID,Type,SchedAt,Title,Desc\n1,All,{LATER},t,d\n2,All,{LATER},{'x' * 200_000},d\n")
    assert str(caught.value) == (f"{tmp_path / 'rows.csv'}: line 3: a cell larger than the CSV limit of 131,072 "
                                 "characters; nothing was sent (a modification is far smaller: is it the right file?)")


def test_an_unclosed_quote_is_still_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="line 2: the row starting here does not parse .*an unclosed or stray quote"):
        rows(tmp_path, f'TaskID,Type,SchedAt\n1,All,"{LATER}\n')


@pytest.mark.parametrize(("text", "kind"), [("42\n", "a number"), ('"hello"', "a string"), ("true", "true or false"),
                                            ("null", "null")])
def test_a_file_holding_one_json_value_is_not_rows(tmp_path: Path, text: str, kind: str) -> None:
    with pytest.raises(InputError) as caught:
        rows(tmp_path, text)
    assert f"not rows: the file holds one JSON value ({kind})" in str(caught.value)


def test_json_nested_too_deeply_is_named_by_line_not_a_traceback(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    deep = "[" * 2000 + "]" * 2000  # RecursionError inside json: a traceback and exit 1 before
    good = json.dumps({"TaskID": 1, "Type": "All", "SchedAt": LATER})
    (tmp_path / "deep.json").write_text(deep, encoding="utf-8")
    (tmp_path / "lines.jsonl").write_text(f"{good}\n{good}\n{deep}\n", encoding="utf-8")
    queue = "sqs:https://sqs.us-east-1.amazonaws.com/123456789012/work"
    assert run("send", "--from", str(tmp_path / "deep.json"), "--to", queue, "--dry-run") == 2
    assert f"deep.json: line 1: nested too deeply (more than {MAX_DEPTH} levels)" in capsys.readouterr().err
    assert run("send", "--from", str(tmp_path / "lines.jsonl"), "--to", queue, "--dry-run") == 2
    err = capsys.readouterr().err
    assert f"lines.jsonl: line 3: nested too deeply (more than {MAX_DEPTH} levels)" in err and "Traceback" not in err


def test_a_row_within_json_s_reach_but_beyond_the_handler_s_bound_is_refused(tmp_path: Path) -> None:
    extra = "[" * (MAX_DEPTH + 10) + "]" * (MAX_DEPTH + 10)  # the handler would dead-letter it: 90104
    text = f'{{"TaskID": 1, "Type": "All", "Content": {{"Extra": {extra}}}}}\n'
    assert rows(tmp_path, text, "rows.jsonl") == [(1, f"modification: nested too deeply (more than {MAX_DEPTH} "
                                                       "levels)")]


# --- send: arguments --------------------------------------------------------------------------------------------


def test_start_line_past_the_end_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rows.csv").write_text(f"TaskID,Type,SchedAt\n1,All,{LATER}\n2,All,{LATER}\n", encoding="utf-8")
    assert run("send", "--from", str(tmp_path / "rows.csv"), "--to", "sqs:https://sqs.x.amazonaws.com/1/q",
               "--start-line", "99") == 2
    err = capsys.readouterr().err
    assert "--start-line 99: past the end of" in err and "its last row starts on line 3" in err
    assert "every row is invalid" not in err


@pytest.mark.parametrize("value", ["abc", "0", "-3", "²"])
def test_start_line_that_is_no_line_number_is_a_usage_error_naming_it(value: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert run("send", "--from", "x.csv", "--to", "direct", "--start-line", value) == 2
    err = capsys.readouterr().err
    assert f"argument --start-line: expected a line number, 1 or more, got '{value}'" in err
    assert "_line_number" not in err


@pytest.mark.parametrize("target", ["sqs:notaurl", "sqs:https://", "sqs:ftp://host/q", "sqs:https://host"])
def test_a_queue_target_that_is_no_url_is_a_usage_error(target: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rows.csv").write_text(f"TaskID,Type,SchedAt\n1,All,{LATER}\n", encoding="utf-8")
    assert run("send", "--from", str(tmp_path / "rows.csv"), "--to", target) == 2
    assert f"--to {target}: not a queue URL" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--from", "--to"])
def test_a_redrive_queue_that_is_no_url_is_a_usage_error(option: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dead.jsonl").write_text("", encoding="utf-8")
    given = {"--from": f"file:{tmp_path / 'dead.jsonl'}", "--to": "direct", option: "sqs:notaurl"}
    assert run("redrive", "--from", given["--from"], "--to", given["--to"]) == 2
    assert f"{option} sqs:notaurl: not a queue URL" in capsys.readouterr().err


# --- what --help says -------------------------------------------------------------------------------------------


def test_send_help_says_skipped_rows_still_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("send", "--help") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "0 every valid row sent and nothing failed; with --skip-invalid, invalid rows are counted as skipped, " \
           "not failed, so a run that skipped some still exits 0" in out


def test_the_top_level_help_names_every_redrive_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--help") == 0
    out = "".join(capsys.readouterr().out.split())  # argparse may wrap at the hyphen of tdmq-cmq
    assert "file:PATH,sqs:URLorSCF'stdmq-cmq:REGION/QUEUE" in out


# --- invoke: a dead letter that cannot be written -------------------------------------------------------------


def test_invoke_exits_1_when_a_dead_letter_cannot_be_written_as_its_help_says(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a disk that is full, and a modification refused locally (no request: it is dead-lettered at once)
    monkeypatch.setenv("IM_SECRET_KEY", "k")
    monkeypatch.setenv("IM_SDKAPPID", "1400000001")
    monkeypatch.setenv("IM_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("DEAD_LETTER", "file:/dev/full")
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"TaskID": 5, "Type": "All",
                                                              "SchedAt": "2001-01-01 00:00:00"})))
    runtime.reset()
    # When invoked, Then a run-time failure: 1, as --help states for a dead letter that could not be written
    assert run("invoke", "-") == 1
    assert "timpush invoke: a dead letter could not be written: file:/dev/full" in capsys.readouterr().err
    assert run("invoke", "--help") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "1 the handler failed at run time, a dead letter that could not be written included" in out
