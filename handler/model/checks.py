"""The small checks every field rule is built from (strict types, ranges, names the API can read), and the list
of problems a validation collects, each at its place in the object."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypeVar

from handler.compat import UTC
from handler.model.refusal import (
    LOCAL_INVALID,
    Invalid,
    _has_surrogate,
    _Loc,
    _path,
    _Problem,
    _show,
)

_T = TypeVar("_T")
# A string the API could not read back (a lone surrogate) in a key, a name list or the Type.
_UNREADABLE: Final = "input should be a valid string, unable to parse raw data as a unicode string"


class _Context:
    """What the rules compare with (a plain class: a dataclass costs ~0.4 ms of every cold start to build)."""

    __slots__ = ("now", "sdkappid", "kind", "issued_at")

    def __init__(self, now: datetime, sdkappid: int | None, kind: str | None) -> None:
        self.now = now
        self.sdkappid = sdkappid  # None: not known yet, the equality check is the caller's
        self.kind = kind  # the task's Type when it is valid, for the rules that depend on it
        self.issued_at: datetime | None = None  # IssuedAt as the rule parsed it, so it is parsed once


def _expect(value: object, kind: type[_T], name: str) -> _T:
    """Strict types: JSON's true is not an integer, 5.0 is not an integer, "5" is not a number."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Invalid(f"expected {name}, got {_show(value)}")
    return value


def _int_in(value: object, low: int, high: int) -> int:
    value = _expect(value, int, "an integer")
    if value < low:
        raise Invalid(f"must be at least {low}, got {_show(value)}")
    if value > high:
        raise Invalid(f"must be at most {high}, got {_show(value)}")
    return value


def _name(value: object) -> str:
    """A non-empty string the API can read (an account, a tag)."""
    value = _expect(value, str, "a string")
    if _has_surrogate(value):
        raise Invalid(_UNREADABLE)
    if not value:
        raise Invalid("must not be empty")
    return value


def _text(value: object) -> str:
    return _expect(value, str, "a string")


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)






class _Problems(list[_Problem]):
    def add(self, loc: _Loc, message: str, code: int = LOCAL_INVALID) -> None:
        self.append((_path(loc) or "modification", message, code))

    def run(self, loc: _Loc, rule: Callable[..., object], *args: object) -> object:
        """``rule(*args)``, or None with its problem recorded."""
        try:
            return rule(*args)
        except Invalid as exc:
            self.add(loc, exc.message, exc.code)
            return None


def _unreadable_key(obj: dict[Any, Any]) -> bool:
    return any(isinstance(key, str) and _has_surrogate(key) for key in obj)
