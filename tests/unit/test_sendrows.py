"""Reading the rows of ``timpush send``: CSV cells to modifications, line numbers, problems by name."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from timpush.send.rows import InputError, Refused, parse_csv, read

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = "2031-06-15 14:00:00"


def _read(tmp_path: Path, text: str, sdkappid: int | None = None,
          apps: frozenset[int] | None = None) -> list[tuple[int, object, str | None]]:
    path = tmp_path / "rows.csv"
    path.write_text(text, encoding="utf-8")
    apps = apps if apps is not None else frozenset({sdkappid}) if sdkappid else None
    return [(row.line, row.modification or None, row.problem) for row in read(str(path), apps=apps, now=NOW)]


def test_a_quoted_cell_over_two_lines_keeps_the_next_row_s_line_number(tmp_path: Path) -> None:
    rows = _read(tmp_path, f'TaskID,Type,SchedAt,Title,Desc\n1,All,{LATER},t,"two\nlines"\n2,Al,{LATER},,\n')
    assert rows[0] == (2, {"TaskID": 1, "Type": "All", "SchedAt": LATER,
                           "Content": {"OfflinePushInfo": {"Title": "t", "Desc": "two\nlines"}}}, None)
    assert rows[1][0] == 4 and "Type: expected 'All', 'Tag' or 'User', got 'Al'" in str(rows[1][2])


def test_title_and_desc_merge_into_content_and_a_clash_is_named(tmp_path: Path) -> None:
    header = "TaskID,Type,SchedAt,Title,Content\n"
    ok = '3,All,,Hello,"{""OfflinePushInfo"": {""Desc"": ""d""}, ""Ext"": 1}"\n'
    clash = '4,All,,Hello,"{""OfflinePushInfo"": {""Title"": ""t""}}"\n'
    rows = _read(tmp_path, header + ok + clash)
    assert rows[0][1] == {"TaskID": 3, "Type": "All", "Content": {"OfflinePushInfo": {"Desc": "d", "Title": "Hello"},
                                                                    "Ext": 1}}
    assert rows[1][2] == "Title: given both as a column and in Content.OfflinePushInfo"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (f"5,All,{LATER},,{{not json", "Content: not JSON"),
        (f"5,All,{LATER},1400000002,", "Sdkappid: 1400000002 does not match the configured SDKAppID 1400000001"),
        (f"5,All,{LATER},abc,", "Sdkappid: expected an integer, got 'abc'"),
        (f"-5,All,{LATER},,", "TaskID: expected a positive integer or a string of digits, got '-5'"),
        ("5,All,,,", "modification: needs SchedAt or Content"),
    ],
)
def test_each_bad_row_is_named_with_its_reason(tmp_path: Path, row: str, problem: str) -> None:
    [(line, _, found)] = _read(tmp_path, "TaskID,Type,SchedAt,Sdkappid,Content\n" + row + "\n", sdkappid=1400000001)
    assert line == 2
    assert problem in str(found)


def test_blank_rows_are_skipped_and_a_header_alone_is_empty(tmp_path: Path) -> None:
    assert [r[0] for r in _read(tmp_path, f"\nTaskID,Type,SchedAt\n,,\n\n7,All,{LATER}\n")] == [5]
    with pytest.raises(InputError, match="no modifications"):
        _read(tmp_path, "TaskID,Type,SchedAt\n,,\n")


def test_a_repeated_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="column Type appears more than once"):
        _read(tmp_path, f"TaskID,Type,SchedAt,Type\n1,All,{LATER},Tag\n")


# --- damaged CSV is refused whole (issue 21, story 1) ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "named"),
    [
        # a quote that never closes would swallow every following row into one Title
        (f'TaskID,Type,SchedAt,Title\n1,All,{LATER},ok\n2,All,{LATER},"unclosed\n3,All,{LATER},x\n', "line 3:"),
        (f'TaskID,Type,SchedAt,Title\n1,All,{LATER},"Say "hi" today"\n', "line 2:"),  # a stray quote
        (f"TaskID,Type,SchedAt,Title\n1,All,{LATER},a,extra\n", "line 2: 5 cells but the header has 4"),
        (f"TaskID,Type,SchedAt,Title\n1,All,{LATER},a\n2,All,{LATER}\n", "line 3: 3 cells but the header has 4"),
    ],
)
def test_damaged_csv_is_refused_whole_naming_the_line(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(InputError, match=named) as refused:
        _read(tmp_path, text)
    assert "nothing was sent" in str(refused.value)


def test_a_trailing_empty_header_cell_is_not_a_column(tmp_path: Path) -> None:
    rows = _read(tmp_path, f"TaskID,Type,SchedAt,\n1,All,{LATER},\n2,All,{LATER}\n")
    assert [(line, mod) for line, mod, _ in rows] == [
        (2, {"TaskID": 1, "Type": "All", "SchedAt": LATER}), (3, {"TaskID": 2, "Type": "All", "SchedAt": LATER})]
    with pytest.raises(InputError, match="line 2: 4 cells"):  # a value under no column is not dropped silently
        _read(tmp_path, f"TaskID,Type,SchedAt,\n1,All,{LATER},surprise\n")


@pytest.mark.parametrize("separator", [";", "\t"])
def test_semicolon_and_tab_separated_exports_are_read(tmp_path: Path, separator: str) -> None:
    text = separator.join(["TaskID", "Type", "SchedAt", "Title", "Desc"]) + "\n"
    text += separator.join(["1", "All", LATER, '"Hello, world; again"', "d"]) + "\n"
    [(line, mod, problem)] = _read(tmp_path, text)
    assert (line, problem) == (2, None)
    assert mod == {"TaskID": 1, "Type": "All", "SchedAt": LATER,
                   "Content": {"OfflinePushInfo": {"Title": "Hello, world; again", "Desc": "d"}}}


def test_an_unknown_semicolon_header_gets_a_hint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="separated by semicolons"):
        _read(tmp_path, "TaskID;Type;When\n1;All;x\n")


@pytest.mark.parametrize(("cell", "read_as"), [("2031-06-16 09:00", "2031-06-16 09:00:00"),
                                               ("2031-06-16 9:05", "2031-06-16 09:05:00")])
def test_times_without_seconds_are_read_as_zero_seconds(tmp_path: Path, cell: str, read_as: str) -> None:
    [(_, mod, problem)] = _read(tmp_path, f"TaskID,Type,SchedAt\n1,All,{cell}\n")
    assert problem is None and mod == {"TaskID": 1, "Type": "All", "SchedAt": read_as}


@pytest.mark.parametrize(
    ("encoded", "hint"),
    [
        ("TaskID,Type,SchedAt,Title\n1,All,,春季促销\n".encode("gbk"), "looks like GBK/GB18030"),
        ("TaskID,Type,SchedAt\n1,All,\n".encode("utf-16"), "UTF-16"),
    ],
)
def test_other_encodings_are_refused_with_a_hint_to_resave(tmp_path: Path, encoded: bytes, hint: str) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(encoded)
    with pytest.raises(InputError, match=hint) as refused:
        read(str(path), apps=None, now=NOW)
    assert "re-save it as UTF-8" in str(refused.value)


# --- JSON shapes (story 9) --------------------------------------------------------------------------------

ONE = {"TaskID": 1, "Type": "All", "SchedAt": LATER}
TWO = {"TaskID": 2, "Type": "Tag", "SchedAt": LATER}


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        (json.dumps([ONE, TWO]), [1, 1]),  # a JSON array file
        (json.dumps([ONE, TWO], indent=2), [2, 7]),  # pretty-printed: each starts on its own line
        (json.dumps(ONE, indent=2) + "\n" + json.dumps(TWO, indent=2), [1, 6]),  # pretty objects one after another
        (json.dumps({"modifications": [ONE, TWO]}), [1, 1]),
        (json.dumps(ONE) + "\n" + json.dumps({"modifications": [TWO]}) + "\n", [1, 2]),  # JSON Lines, one wrapped
    ],
)
def test_json_shapes_are_read_with_the_line_each_starts_on(tmp_path: Path, text: str, lines: list[int]) -> None:
    rows = _read(tmp_path, text)
    assert [(line, mod, problem) for line, mod, problem in rows] == [(lines[0], ONE, None), (lines[1], TWO, None)]


def test_damaged_pretty_json_is_refused_whole(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="line 3, column"):
        _read(tmp_path, '[\n  {"TaskID": 1, "Type": "All",\n  "SchedAt" "x"}\n]\n')


def test_several_apps_need_a_known_sdkappid_on_every_row(tmp_path: Path) -> None:
    rows = _read(tmp_path, f"TaskID,Type,SchedAt,Sdkappid\n1,All,{LATER},\n2,All,{LATER},1400000009\n"
                           f"3,All,{LATER},1400000002\n", apps=frozenset({1400000001, 1400000002}))
    assert rows[0][2] == "Sdkappid: required: this deployment serves several apps (1400000001, 1400000002)"
    assert rows[1][2] == "Sdkappid: 1400000009 is not an app this deployment serves (1400000001, 1400000002)"
    assert rows[2][2] is None


# --- the property: strict csv round-trips, anything else is refused whole ---------------------------------

HEADER = ("TaskID", "Type", "SchedAt")


def _oracle(text: str) -> list[list[str]] | None:
    """What Python's csv reads strictly: the non-blank rows, or None when it refuses or a count is off."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return None
    body = [row for row in rows[1:] if any(cell.strip() for cell in row)]
    return body if all(len(row) == len(HEADER) for row in body) else None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab ,"\n\r\u00e9', max_size=60))
def test_strict_csv_round_trips_and_anything_else_is_refused_whole(body: str) -> None:
    text = ",".join(HEADER) + "\n" + body
    expected = _oracle(text)
    if expected is None:
        with pytest.raises(Refused):
            parse_csv(text)
        return
    assert [list(cells.values()) for _, cells in parse_csv(text)] == expected
