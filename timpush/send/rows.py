"""The rows of ``timpush send``: CSV or JSON in, each row checked by the handler's own model.

A CSV header names its columns (``COLUMNS``; ``REQUIRED`` must be there); ``Title``/``Desc`` fill
``Content.OfflinePushInfo`` and ``Content`` is JSON. The CSV is parsed strictly: an unclosed or stray
quote, or a row with more or fewer cells than the header, refuses the whole file (a quote that never
closes would otherwise swallow every following row into one cell). JSON may be JSON Lines, an array,
pretty-printed, or ``{"modifications": [...]}`` (``timpush.send.jsonl``). Either may start with a UTF-8
BOM. Whatever is wrong with the input as a whole (empty, not UTF-8, damaged, a missing or unknown
column) is an ``InputError``; a row that is wrong becomes a ``Row`` with its ``problem``, so every bad
row can be named at once.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterator, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handler.compat import UTC
from handler.im.codes import INVALID_PARAMETERS
from handler.model import LocalRefusal, TooDeep, check_depth, loads, validate
from timpush.send.jsonl import Damaged, json_rows, looks_like_json

COLUMNS = ("TaskID", "Type", "SchedAt", "Sdkappid", "Title", "Desc", "Content", "IssuedAt")
REQUIRED = ("TaskID", "Type", "SchedAt")  # DESIGN's header; an empty SchedAt cell leaves the time alone
PUSH_INFO_COLUMNS = ("Title", "Desc")
ISSUED_AT = "IssuedAt"  # orders the modification (DESIGN "Order"); the handler's model checks it


class InputError(Exception):
    """The input cannot be used at all; the message names the file and what is wrong."""


class Refused(ValueError):
    """The CSV as a whole cannot be used (damaged, or a bad header); the message names the line."""


@dataclass(frozen=True)
class Row:
    """One modification read from the input; ``problem`` is set when it is not valid."""

    line: int
    modification: dict[str, Any]
    task_id: int | None = None  # the validated TaskID
    issued_at: str | None = None  # the row's IssuedAt, normalised: ISO 8601 UTC with milliseconds
    problem: str | None = None
    code: int = 0  # the refusal's code (90104, 90110) when invalid

    @property
    def valid(self) -> bool:
        return self.problem is None


def read(spec: str, *, apps: Set[int] | None, now: datetime) -> list[Row]:
    """Every row of ``spec`` (a path, or ``-`` for stdin), checked against ``apps`` (None: the app is not
    known here); InputError when the input cannot be used at all."""
    text = _decode(_load(spec), spec)
    _refuse_a_lone_value(text, spec)
    try:
        parsed = list(json_rows(text) if looks_like_json(text) else csv_rows(text))
    except (Damaged, Refused) as exc:
        raise InputError(f"{display_name(spec)}: {exc}") from None
    rows = [check(line, obj, apps=apps, now=now) if obj is not None else _bad(line, problem)
            for line, obj, problem in parsed]
    if not rows:
        raise InputError(f"{display_name(spec)}: no modifications in it")
    return rows


def _refuse_a_lone_value(text: str, spec: str) -> None:
    """A file that is one JSON number, string, true, false or null holds no rows: say so, rather than read it as
    a CSV whose header is ``42``."""
    if looks_like_json(text):
        return
    try:
        value = loads(text)
    except ValueError:
        return  # not JSON: CSV
    kind = "a string" if isinstance(value, str) else "null" if value is None else (
        "true or false" if isinstance(value, bool) else "a number")
    raise InputError(f"{display_name(spec)}: not rows: the file holds one JSON value ({kind}); expected CSV with a "
                     "header (TaskID,Type,SchedAt,...) or JSON modifications (objects, one per line or in an array)")


def check(line: int, obj: dict[str, Any], *, apps: Set[int] | None, now: datetime) -> Row:
    """The row of ``obj`` as the handler will judge it: its own model, with the same apps and clock."""
    try:
        check_depth(obj)  # the handler refuses it as a whole (90104): so is the row, before anything is sent
    except TooDeep as exc:
        return Row(line, {}, problem=f"modification: {exc}", code=INVALID_PARAMETERS)
    obj = _with_seconds(obj)
    only = next(iter(apps)) if apps is not None and len(apps) == 1 else None
    try:
        valid = validate(obj, sdkappid=only, now=now)
    except LocalRefusal as refusal:
        return Row(line, obj, problem=refusal.reason, code=refusal.code)
    problem = _app_problem(valid.Sdkappid, apps) or _push_info_problem(obj)
    if problem:
        return Row(line, obj, problem=problem, code=INVALID_PARAMETERS)
    return Row(line, obj, valid.TaskID, valid.IssuedAt)


def _app_problem(sdkappid: int | None, apps: Set[int] | None) -> str | None:
    """With several apps a row must name one of them (the handler would dead-letter it with 90104)."""
    if apps is None or len(apps) < 2:
        return None
    served = ", ".join(str(app) for app in sorted(apps))
    if sdkappid is None:
        return f"Sdkappid: required: this deployment serves several apps ({served})"
    if sdkappid not in apps:
        return f"Sdkappid: {sdkappid} is not an app this deployment serves ({served})"
    return None


def _push_info_problem(obj: dict[str, Any]) -> str | None:
    """Title and Desc go together (DESIGN "Command line"): the server may replace ``OfflinePushInfo`` as a whole,
    so a row that gives one and not the other would send the task out with the other one empty."""
    content = obj.get("Content")
    info = content.get("OfflinePushInfo") if isinstance(content, dict) else None
    if not isinstance(info, dict):
        return None
    given = [name for name in PUSH_INFO_COLUMNS if info.get(name) not in (None, "")]
    if len(given) != 1:
        return None
    missing = next(name for name in PUSH_INFO_COLUMNS if name not in given)
    return (f"{missing}: empty while {given[0]} is given: Title and Desc go together (the server may replace "
            f"OfflinePushInfo as a whole, and the push would go out with an empty {missing})")


_MINUTES = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{1,2}):(\d{2})")  # a spreadsheet's usual time, no seconds


def _with_seconds(obj: dict[str, Any]) -> dict[str, Any]:
    """``2031-06-16 9:00`` (Excel leaves the seconds out) is ``2031-06-16 09:00:00``."""
    match = _MINUTES.fullmatch(obj["SchedAt"].strip()) if isinstance(obj.get("SchedAt"), str) else None
    if match is None:
        return obj
    day, hour, minute = match.groups()
    return {**obj, "SchedAt": f"{day} {int(hour):02d}:{minute}:00"}


def stamp(when: datetime) -> str:
    """ISO 8601 UTC with milliseconds: ``2030-06-01T00:00:00.000Z``."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bad(line: int, problem: str | None) -> Row:
    """A row that never became a modification object (not JSON, too many cells, Content not JSON)."""
    return Row(line, {}, problem=problem or "unreadable", code=INVALID_PARAMETERS)


# --- reading ---------------------------------------------------------------------------------------------


def _load(spec: str) -> bytes:
    if spec == "-":
        return sys.stdin.buffer.read()
    try:
        with open(spec, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise InputError(f"{spec}: {exc.strerror or exc}") from exc


RESAVE = "re-save it as UTF-8 (Excel: 'CSV UTF-8 (Comma delimited)')"


def _decode(data: bytes, spec: str) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(data) > 1 and b"\x00" in data[:2]):
        raise InputError(f"{display_name(spec)}: UTF-16 (Excel's 'Unicode Text'), not UTF-8: {RESAVE}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        where = f"line {line}, byte {exc.start}"
        guess = "looks like GBK/GB18030 (a Chinese Windows default); " if _is_gb18030(data) else ""
        raise InputError(f"{display_name(spec)}: not UTF-8 ({where}); {guess}{RESAVE}") from None


def _is_gb18030(data: bytes) -> bool:
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return False
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)  # it decodes to Chinese text


def display_name(spec: str) -> str:
    return "stdin" if spec == "-" else spec


_Parsed = tuple[int, dict[str, Any] | None, str | None]  # line, object, problem
SEPARATORS = (",", ";", "\t")  # a comma, or what a European Excel or a tab-separated export uses
_SEPARATOR_NAMES = {";": "semicolons", "\t": "tabs"}


def csv_rows(text: str) -> Iterator[_Parsed]:
    """Each non-blank row as a modification (or its problem); ``Refused`` when the file is damaged."""
    for line, cells in parse_csv(text):
        yield _from_cells(line, cells)


def parse_csv(text: str) -> list[tuple[int, dict[str, str]]]:
    """Every non-blank row's cells by column, with the line it starts on, read strictly (``Refused``)."""
    reader = _reader(text, ",")
    header, start = _header(reader)
    separator = next((s for s in SEPARATORS[1:] if s in header[0]), None) if len(header) == 1 else None
    if separator is not None and header[0].strip() not in COLUMNS:
        reader = _reader(text, separator)
        header, start = _header(reader)
    columns = _columns(header, separator)
    rows: list[tuple[int, dict[str, str]]] = []
    while True:
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            raise _damaged(text, start, reader.line_num, exc) from None
        if cells is None:
            return rows
        line, start = start, reader.line_num + 1  # a quoted cell may span lines: the row starts here
        if any(cell.strip() for cell in cells):
            rows.append((line, _cells(line, columns, len(header), cells)))


def _damaged(text: str, start: int, stop: int, exc: csv.Error) -> Refused:
    """Why the row from line ``start`` to ``stop`` does not parse: a cell larger than ``csv``'s limit (a line that
    long holds one), else an unclosed or stray quote (what strict parsing refuses)."""
    limit = csv.field_size_limit()
    long = [number for number, line in enumerate(text.split("\n")[start - 1:stop], start=start) if len(line) > limit]
    if long:
        return Refused(f"line {long[0]}: a cell larger than the CSV limit of {limit:,} characters; nothing was sent "
                       "(a modification is far smaller: is it the right file?)")
    return Refused(f"line {start}: the row starting here does not parse ({exc}): an unclosed or stray quote; "
                   "nothing was sent (quote a whole cell, and double a quote inside it)")


def _reader(text: str, separator: str) -> Any:
    return csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=True)


def _header(reader: Any) -> tuple[list[str], int]:
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)  # blank lines before the header
    except csv.Error as exc:
        raise Refused(f"line {reader.line_num}: the header does not parse ({exc})") from None
    if header is None:
        raise Refused("no modifications in it (empty)")
    return header, reader.line_num + 1


def _columns(header: list[str], separator: str | None) -> list[str]:
    columns = [name.strip() for name in header]
    while len(columns) > 1 and not columns[-1]:
        columns.pop()  # a trailing separator in the header: an empty last cell, not a column
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        hint = f" (read as separated by {_SEPARATOR_NAMES[separator]})" if separator else ""
        raise Refused(f"unknown column {', '.join(repr(n) for n in unknown)} (the columns are "
                      f"{', '.join(COLUMNS)}){hint}")
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise Refused(f"missing column {', '.join(missing)} (the header needs {', '.join(REQUIRED)}; "
                      f"optional: {', '.join(c for c in COLUMNS if c not in REQUIRED)})")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise Refused(f"column {', '.join(repeated)} appears more than once")
    return columns


def _cells(line: int, columns: list[str], width: int, cells: list[str]) -> dict[str, str]:
    """The cells by column; a row may end at the last named column when the header ends in empty cells."""
    named, extra = cells[: len(columns)], cells[len(columns):]
    if len(cells) not in (len(columns), width) or any(cell.strip() for cell in extra):
        raise Refused(f"line {line}: {len(cells)} cells but the header has {len(columns)} columns (a separator "
                      "in an unquoted cell, or one missing?); nothing was sent")
    return dict(zip(columns, named, strict=True))


def _from_cells(line: int, cells: dict[str, str]) -> _Parsed:
    values = {name: cell for name, cell in cells.items() if cell.strip()}
    try:
        return line, _modification(values), None
    except ValueError as exc:
        return line, None, str(exc)


def _modification(values: dict[str, str]) -> dict[str, Any]:
    """A CSV row's cells as the modification JSON would carry them; empty cells are absent."""
    obj: dict[str, Any] = {}
    for name in ("TaskID", "Type", "SchedAt", "Sdkappid", ISSUED_AT):
        if name in values:
            text = values[name].strip()
            digits = name in ("TaskID", "Sdkappid") and text.isascii() and text.isdigit()
            obj[name] = int(text) if digits else text  # anything else is left for the model to name
    content = _content(values)
    if content is not None:
        obj["Content"] = content
    return obj


def _content(values: dict[str, str]) -> Any:
    content: Any = None
    if "Content" in values:
        try:
            content = loads(values["Content"])
        except TooDeep as exc:
            raise ValueError(f"Content: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"Content: not JSON ({exc})") from None
    given = {name: values[name] for name in PUSH_INFO_COLUMNS if name in values}
    if not given:
        return content
    content = {} if content is None else content
    info = content.setdefault("OfflinePushInfo", {}) if isinstance(content, dict) else None
    if not isinstance(info, dict):
        return content  # Content (or its OfflinePushInfo) is not an object: the model says so
    for name, text in given.items():
        if name in info:
            raise ValueError(f"{name}: given both as a column and in Content.OfflinePushInfo")
        info[name] = text
    return content
