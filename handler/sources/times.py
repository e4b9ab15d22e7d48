"""The times a platform stamps on an event, read as an issue time (DESIGN "Order"; "No event crashes a trigger").

SQS ``SentTimestamp``, API Gateway's ``timeEpoch`` / ``requestTimeEpoch``, a TDMQ event's ``time``, CMQ's
``publishTime``, a Timer's ``Time``: epoch milliseconds (a number or its digits) or ISO 8601 with an offset.
One that is not a usable epoch (not a number, before 2000, after 9999) can only come from a hand-made or
forwarded event; it must not fail the message, so it is ignored with a WARNING naming the field, and the
issue time is the time of receipt.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Final

from handler.compat import UTC
from handler.model import parse_issued_at
from handler.observability import logger
from handler.order.key import text_id

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
_EARLIEST_MS: Final = (EARLIEST - EPOCH) // timedelta(milliseconds=1)
_LATEST_MS: Final = (LATEST - EPOCH) // timedelta(milliseconds=1)
SHOWN_MAX: Final = 40  # characters of an unusable value a warning shows


def platform_time(value: object, received: datetime, field: str) -> datetime:
    """The time ``value`` gives; ``received`` when it gives none (None), or, with a WARNING, an unusable one."""
    if value is None:
        return received
    when = _read(value)
    if when is None:
        logger.warning("platform time unusable: the time of receipt is used",
                       extra={"field": field, "value": _shown(value)})
        return received
    return when


def _read(value: object) -> datetime | None:
    if isinstance(value, str):
        if value.isascii() and value.isdigit():
            return _from_ms(int(value)) if len(value) <= len(str(_LATEST_MS)) else None
        try:
            when = parse_issued_at(value)
        except ValueError:  # handler.model.Invalid is a ValueError
            return None
        return when if EARLIEST <= when <= LATEST else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return _from_ms(value) if isinstance(value, int) or math.isfinite(value) else None


def _from_ms(ms: float) -> datetime | None:
    if not _EARLIEST_MS <= ms <= _LATEST_MS:
        return None
    return EPOCH + timedelta(milliseconds=int(ms))


def _shown(value: object) -> str:
    """The value as a short, always encodable text (a lone surrogate escaped)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return "a very large number"
    text = value if isinstance(value, str) else repr(value) if isinstance(value, int | float) else (
        f"a JSON {type(value).__name__}")
    text = text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"
    return text_id(text)
