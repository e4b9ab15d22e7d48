"""Checks of body fields shared by the five APIs; each refusal is 90104 naming the field."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TypeGuard

from handler.compat import UTC
from timpush.emulator import envelope as env
from timpush.emulator.settings import EmulatorSettings

TYPES = ("All", "Tag", "User")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_DAY = 86400

Body = Mapping[str, object]


def invalid(info: str) -> env.ApiError:
    return env.ApiError(env.INVALID_PARAMS, info)


def parse_time(value: object, name: str) -> int:
    """A ``YYYY-MM-DD HH:MM:SS`` UTC string that is a real date, as a unix timestamp."""
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise invalid(f"invalid {name}: must be YYYY-MM-DD HH:MM:SS (UTC)")
    try:
        parsed = datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:  # e.g. 2030-02-30 or a leap second 23:59:60 pass the pattern but are no time
        raise invalid(f"invalid {name}: not a real date and time") from exc
    return int(parsed.timestamp())


def format_time(timestamp: float) -> str:
    return time.strftime(TIME_FORMAT, time.gmtime(timestamp))


def is_int(value: object) -> TypeGuard[int]:
    """A JSON integer; JSON's true/false are bools, which Python counts as ints."""
    return isinstance(value, int) and not isinstance(value, bool)


def require_sdkappid(body: Body, sdkappid: int) -> None:
    value = body.get("Sdkappid")
    if not is_int(value) or value != sdkappid:
        raise invalid("invalid Sdkappid: must be the integer sdkappid of the URL")


def require_type(body: Body) -> str:
    value = body.get("Type")
    if not isinstance(value, str) or value not in TYPES:
        raise invalid("invalid Type: must be All, Tag or User")
    return value


def require_task_id(body: Body) -> int:
    value = body.get("TaskID")
    if not is_int(value) or value <= 0:
        raise invalid("invalid TaskID")
    return value


def check_schedule(sched_at: int, now: float, settings: EmulatorSettings, code: int) -> None:
    """A SchedAt the settings accept: in the future, and not beyond the maximum lead time."""
    if settings.refuse_past and sched_at <= now:
        raise env.ApiError(code, "invalid SchedAt: the time has already passed")
    lead = settings.max_lead_days
    if lead is not None and sched_at > now + lead * _DAY:
        raise env.ApiError(code, f"invalid SchedAt: more than {lead:g} days ahead")
