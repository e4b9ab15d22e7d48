"""The JSON shapes ``timpush send`` reads: JSON Lines, a JSON array, pretty-printed JSON, ``{"modifications": [...]}``.

A file of JSON values (one per line, or spread over lines, or an array of them) is read as a stream:
each modification keeps the line it starts on. A file that is not such a stream but whose first line
is JSON is JSON Lines with damaged lines: each bad line is named (they are independent records). A file
that is neither (a pretty-printed document cut short) is damaged input and refused whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from handler.model import loads
from handler.model.jsontext import TOO_DEEP

_Parsed = tuple[int, dict[str, Any] | None, str | None]  # line, object, problem
_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"\s*")
WRAPPER = "modifications"  # DESIGN: a payload may be {"modifications": [...]}


class Damaged(ValueError):
    """Not JSON as a whole and not JSON Lines: the message names the line and column."""


def looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def json_rows(text: str) -> Iterator[_Parsed]:
    """Every modification in ``text`` with the line it starts on; a problem instead of an object when bad."""
    try:
        values = _stream(text)
    except json.JSONDecodeError as exc:
        if not _first_line_is_json(text):
            raise Damaged(f"line {exc.lineno}, column {exc.colno}: not JSON: {exc.msg} "
                          "(the file does not parse as JSON, JSON Lines or a JSON array)") from None
        yield from _json_lines(text)
        return
    for position, value in values:
        yield from _expand(text.count("\n", 0, position) + 1, value)


def _stream(text: str) -> list[tuple[int, Any]]:
    """The top-level values of ``text`` with their positions; a top-level array gives its elements."""
    out: list[tuple[int, Any]] = []
    i = _skip(text, 0)
    while i < len(text):
        if text[i] == "[":
            i = _array(text, i, out)
        else:
            value, end = _decode(text, i)
            out.append((i, value))
            i = end
        i = _skip(text, i)
    return out


def _decode(text: str, i: int) -> tuple[Any, int]:
    """The JSON value at ``i`` and where it ends; ``Damaged`` naming its line when it nests too deeply for
    ``json`` itself (which then raises RecursionError, and where it ends is unknown)."""
    try:
        return _DECODER.raw_decode(text, i)
    except RecursionError:
        raise Damaged(f"line {text.count(chr(10), 0, i) + 1}: {TOO_DEEP}") from None


def _array(text: str, i: int, out: list[tuple[int, Any]]) -> int:
    i = _skip(text, i + 1)
    if text.startswith("]", i):
        return i + 1
    while True:
        value, end = _decode(text, i)
        out.append((i, value))
        i = _skip(text, end)
        if text.startswith("]", i):
            return i + 1
        if not text.startswith(",", i):
            raise json.JSONDecodeError("expected ',' or ']' between array elements", text, i)
        i = _skip(text, i + 1)


def _skip(text: str, i: int) -> int:
    match = _SPACE.match(text, i)
    return match.end() if match else i


def _first_line_is_json(text: str) -> bool:
    first = next((line for line in text.split("\n") if line.strip()), "")
    try:
        loads(first)
    except ValueError:  # TooDeep included
        return False
    return True


def _json_lines(text: str) -> Iterator[_Parsed]:
    # JSON Lines end at "\n" only: str.splitlines() would also split at U+2028 inside a value
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            values = _stream(line)
        except Damaged:  # nested too deeply (the only way one line is Damaged)
            yield number, None, TOO_DEEP
            continue
        except ValueError as exc:
            yield number, None, f"not JSON: {exc}"
            continue
        for _, value in values:
            yield from _expand(number, value)


def _expand(line: int, value: Any) -> Iterator[_Parsed]:
    if isinstance(value, dict) and set(value) == {WRAPPER}:
        items = value[WRAPPER]
        if not isinstance(items, list) or not items:
            yield line, None, f"{WRAPPER}: expected a non-empty array of modification objects"
            return
        for item in items:
            yield from _expand(line, item)
    elif isinstance(value, dict):
        yield line, value, None
    else:
        yield line, None, "expected one modification (a JSON object), an array of them or {\"modifications\": [...]}"
