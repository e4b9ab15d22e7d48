"""Times as the modification carries them: ``SchedAt`` (the API's ``YYYY-MM-DD HH:MM:SS`` in UTC, or ISO 8601) and
``IssuedAt`` (ISO 8601 with an offset, milliseconds kept), and the issue time as DESIGN writes it.

Patterns as text: ``re`` compiles each on its first use and keeps it, so a cold start pays only for those its
first modification needs (compiling them all at import cost about 0.6 ms)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Final

from handler.compat import UTC
from handler.model.refusal import (
    Invalid,
    _show,
)

API_TIME: Final = "%Y-%m-%d %H:%M:%S"
_API_FORM = r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})"
_ISO_FORM = (
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,][0-9]+)?)?"
    r"(Z|([+-])([0-9]{2}):?([0-9]{2}))?"
)
ISSUED_AHEAD_MAX: Final = timedelta(minutes=5)  # producer clock skew allowed; a later IssuedAt would pin the task


def parse_sched_at(text: str) -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) or ISO 8601 (naive = UTC) to an aware UTC time, whole seconds."""
    if api := re.fullmatch(_API_FORM, text):
        return _build(text, [int(g) for g in api.groups()], UTC)
    iso = re.fullmatch(_ISO_FORM, text)
    if iso is None:
        raise Invalid("expected 'YYYY-MM-DD HH:MM:SS' (UTC) or ISO 8601 such as '2030-06-15T22:00:00+08:00', "
                      f"got {_show(text)}")
    parts = [int(g or 0) for g in iso.groups()[:6]]  # seconds may be left out
    return _build(text, parts, _offset(iso))


def _offset(iso: re.Match[str]) -> timezone:
    sign, hours, minutes = iso.group(8, 9, 10)
    if sign is None:
        return UTC  # "Z", or naive: the API's own zone
    if int(hours) > 23 or int(minutes) > 59:
        raise _bad_time(iso.string, "the UTC offset is out of range")
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def _build(text: str, parts: list[int], tz: timezone) -> datetime:
    try:
        year, month, day, hour, minute, second = parts
        return datetime(year, month, day, hour, minute, second, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _bad_time(text, str(exc)) from exc


def _bad_time(text: str, why: str) -> Invalid:
    return Invalid(f"{_show(text)} is not a valid date and time ({why})")


def parse_issued_at(text: str) -> datetime:
    """``IssuedAt``: ISO 8601 with a UTC offset (or ``Z``), milliseconds kept; a time without one is refused,
    since the producer's zone cannot be guessed and a wrong guess reorders changes by hours."""
    iso = re.fullmatch(_ISO_FORM, text)
    if iso is None or iso.group(7) is None:
        raise Invalid(f"expected ISO 8601 with a UTC offset such as '2030-06-01T08:00:00.250Z', got {_show(text)}")
    parts = [int(g or 0) for g in iso.groups()[:6]]
    when = _build(text, parts, _offset(iso))
    return when.replace(microsecond=_millis(text) * 1000)


def _millis(text: str) -> int:
    fraction = re.search(r"[.,]([0-9]+)", text)
    return int((fraction.group(1) + "00")[:3]) if fraction else 0


def format_issued_at(when: datetime) -> str:
    """An issue time as DESIGN writes it: ISO 8601 UTC with milliseconds."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
