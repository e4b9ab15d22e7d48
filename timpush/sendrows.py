"""The rows of ``timpush send``: CSV or JSON Lines in, each row checked by the handler's own model.

A CSV header names its columns (``COLUMNS``; ``REQUIRED`` must be there); ``Title``/``Desc`` fill
``Content.OfflinePushInfo`` and ``Content`` is JSON. A JSON Lines file holds one modification object
per line. Either may start with a UTF-8 BOM. Whatever is wrong with the input as a whole (empty, not
UTF-8, a missing or unknown column) is an ``InputError``; a row that is wrong becomes a ``Row`` with
its ``problem``, so every bad row can be named at once.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handler.compat import UTC
from handler.im.codes import INVALID_PARAMETERS
from handler.model import LocalRefusal, validate

COLUMNS = ("TaskID", "Type", "SchedAt", "Sdkappid", "Title", "Desc", "Content", "IssuedAt")
REQUIRED = ("TaskID", "Type", "SchedAt")  # DESIGN's header; an empty SchedAt cell leaves the time alone
PUSH_INFO_COLUMNS = ("Title", "Desc")
ISSUED_AT = "IssuedAt"  # orders the modification (DESIGN "Order"); the handler's model checks it


class InputError(Exception):
    """The input cannot be used at all; the message names the file and what is wrong."""


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


def read(spec: str, *, sdkappid: int | None, now: datetime) -> list[Row]:
    """Every row of ``spec`` (a path, or ``-`` for stdin), checked; InputError when there is none."""
    text = _decode(_load(spec), spec)
    parsed = _json_lines(text) if _looks_like_json_lines(text) else _csv_rows(text, spec)
    rows = [check(line, obj, sdkappid=sdkappid, now=now) if obj is not None else _bad(line, problem)
            for line, obj, problem in parsed]
    if not rows:
        raise InputError(f"{display_name(spec)}: no modifications in it")
    return rows


def check(line: int, obj: dict[str, Any], *, sdkappid: int | None, now: datetime) -> Row:
    """The row of ``obj`` as the handler will judge it: its own model, with the same app and clock."""
    try:
        valid = validate(obj, sdkappid=sdkappid, now=now)
    except LocalRefusal as refusal:
        return Row(line, obj, problem=refusal.reason, code=refusal.code)
    return Row(line, obj, valid.TaskID, valid.IssuedAt)


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


def _decode(data: bytes, spec: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{display_name(spec)}: not UTF-8 (line {line}, byte {exc.start})") from None


def display_name(spec: str) -> str:
    return "stdin" if spec == "-" else spec


def _looks_like_json_lines(text: str) -> bool:
    first = next((line for line in text.split("\n") if line.strip()), "")
    return first.lstrip().startswith("{")


_Parsed = tuple[int, dict[str, Any] | None, str | None]  # line, object, problem


def _json_lines(text: str) -> Iterator[_Parsed]:
    # JSON Lines end at "\n" only: str.splitlines() would also split at U+2028 inside a value
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            yield number, None, f"not JSON: {exc}"
            continue
        if not isinstance(obj, dict):
            yield number, None, "expected one modification (a JSON object) per line"
        else:
            yield number, obj, None


def _csv_rows(text: str, spec: str) -> Iterator[_Parsed]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    while header is not None and not any(cell.strip() for cell in header):
        header = next(reader, None)  # blank lines before the header
    if header is None:
        raise InputError(f"{display_name(spec)}: no modifications in it (empty)")
    columns = _columns(header, spec)
    start = reader.line_num + 1
    for cells in reader:
        line, start = start, reader.line_num + 1  # a quoted cell may span lines: the row starts here
        if any(cell.strip() for cell in cells):
            yield _from_cells(line, columns, cells)


def _columns(header: list[str], spec: str) -> list[str]:
    columns = [name.strip() for name in header]
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        raise InputError(f"{display_name(spec)}: unknown column {', '.join(repr(n) for n in unknown)} "
                         f"(the columns are {', '.join(COLUMNS)})")
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise InputError(f"{display_name(spec)}: missing column {', '.join(missing)} (the header needs "
                         f"{', '.join(REQUIRED)}; optional: {', '.join(c for c in COLUMNS if c not in REQUIRED)})")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise InputError(f"{display_name(spec)}: column {', '.join(repeated)} appears more than once")
    return columns


def _from_cells(line: int, columns: list[str], cells: list[str]) -> _Parsed:
    if len(cells) > len(columns):
        return line, None, f"{len(cells)} cells but the header has {len(columns)} columns"
    values = {name: cell for name, cell in zip(columns, cells, strict=False) if cell.strip()}
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
            content = json.loads(values["Content"])
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
