"""Refusals before sending: a field's problem (``Invalid``), the refusal that lists them all (``LocalRefusal``,
with the API's own codes: 90104, or 90110 when only the time is past), and how input is echoed in a reason."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Final

from handler.im.codes import INVALID_PARAMETERS, SCHED_TIME_PASSED

LOCAL_INVALID: Final = INVALID_PARAMETERS
LOCAL_TOO_LATE: Final = SCHED_TIME_PASSED
ECHO_MAX: Final = 60  # echoed input is capped so a huge value never lands in a reason or a log
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,59}"
_SURROGATE = "[\ud800-\udfff]"
_Problem = tuple[str, str, int]  # field, message, code
_Loc = tuple[str | int, ...]


class Invalid(ValueError):
    """One field's problem, worded for a reason; ``code`` is 90110 only for a time already past."""

    def __init__(self, message: str, code: int = LOCAL_INVALID) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class LocalRefusal(Exception):
    """A modification refused before sending; ``code`` is 90104, or 90110 when only the time is past."""

    def __init__(self, code: int, errors: Sequence[Mapping[str, str]]) -> None:
        self.code = code
        self.errors: list[dict[str, str]] = [dict(e) for e in errors]
        self.reason = "; ".join(f"{e['field']}: {e['message']}" for e in self.errors)
        super().__init__(self.reason)

    @classmethod
    def single(cls, field: str, message: str, code: int = LOCAL_INVALID) -> LocalRefusal:
        return cls(code, [{"field": field, "message": message}])


def _show(value: object) -> str:
    """A short, JSON-flavoured description of an input value for a reason."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int) and value.bit_length() > 190:
        return "a very large number"
    if isinstance(value, int | float):
        return _cap(repr(value))
    if isinstance(value, str):
        return "'" + _cap(value) + "'"
    return _kind(value)


def _kind(value: object) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "a boolean"), ((int, float), "a number"), (str, "a string"),
        (list, "an array"), (dict, "an object"),
    ]
    if value is None:
        return "null"
    return next((name for cls, name in kinds if isinstance(value, cls)), type(value).__name__)


def _cap(text: str) -> str:
    """At most ECHO_MAX characters, lone surrogates (valid JSON escapes such as ``"\\udcff"``) shown escaped:
    a reason must encode as UTF-8 wherever it goes (a log, a file, an HTTP answer)."""
    text = text if len(text) <= ECHO_MAX else text[: ECHO_MAX - 1] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if _has_surrogate(text) else text


def _has_surrogate(text: str) -> bool:
    """A lone surrogate (a valid JSON escape such as ``"\\udcff"``, which no UTF-8 encoder takes)."""
    return not text.isascii() and re.search(_SURROGATE, text) is not None


def _refusal(problems: list[_Problem]) -> LocalRefusal:
    code = LOCAL_TOO_LATE if problems and all(p[2] == LOCAL_TOO_LATE for p in problems) else LOCAL_INVALID
    return LocalRefusal(code, [{"field": field, "message": message} for field, message, _ in problems])


def _path(loc: _Loc) -> str:
    """``Content.To_Account[3]``; a key that is not a plain name is quoted and capped: ``["a b"]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(_NAME, part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(_cap(part), ensure_ascii=False)}]"
    return out
