"""Reading the rows of ``timpush send``: CSV cells to modifications, line numbers, problems by name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from timpush.sendrows import InputError, read

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = "2031-06-15 14:00:00"


def _read(tmp_path: Path, text: str, sdkappid: int | None = None) -> list[tuple[int, object, str | None]]:
    path = tmp_path / "rows.csv"
    path.write_text(text, encoding="utf-8")
    return [(row.line, row.modification or None, row.problem) for row in read(str(path), sdkappid=sdkappid, now=NOW)]


def test_a_quoted_cell_over_two_lines_keeps_the_next_row_s_line_number(tmp_path: Path) -> None:
    rows = _read(tmp_path, f'TaskID,Type,SchedAt,Desc\n1,All,{LATER},"two\nlines"\n2,Al,{LATER},\n')
    assert rows[0] == (2, {"TaskID": 1, "Type": "All", "SchedAt": LATER,
                           "Content": {"OfflinePushInfo": {"Desc": "two\nlines"}}}, None)
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
        (f"5,All,{LATER},,,extra", "6 cells but the header has 5 columns"),
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
