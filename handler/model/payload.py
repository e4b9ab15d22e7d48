"""Payloads: one modification, a JSON array of them, or ``{"modifications": [...]}``, split into items that keep
each modification's text as received (or its own JSON)."""

from __future__ import annotations

import json
from typing import Final, NamedTuple

from handler.model.jsontext import TOO_DEEP as TOO_DEEP_REASON
from handler.model.jsontext import TooDeep, check_depth, loads


class NotJson:
    """Item.parsed when the payload could not be read as JSON; ``reason`` says why, for the refusal."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def __repr__(self) -> str:
        return self.name


NOT_JSON: Final = NotJson("NOT_JSON", "the payload is not JSON")
TOO_DEEP: Final = NotJson("TOO_DEEP", f"the payload is {TOO_DEEP_REASON}")


class Item(NamedTuple):
    """One modification's text as received (or its own JSON, when a payload carried several)."""

    raw: str
    parsed: object  # the JSON value, or a NotJson (NOT_JSON, TOO_DEEP)


def split_payload(payload: str | bytes | object) -> list[Item]:
    """One item per modification in a payload: a single one, an array, or ``{"modifications": [...]}``.

    Text and bytes are parsed; anything else is taken as an already parsed JSON value. An empty
    array stays one item, so it is refused loudly rather than dropped.
    """
    if isinstance(payload, bytes | bytearray):
        data = bytes(payload)
        try:
            payload = data.decode("utf-8")
        except UnicodeDecodeError:
            return [Item(data.decode("utf-8", errors="replace"), NOT_JSON)]
    if isinstance(payload, str):
        parsed = _loads(payload)
        return _split(parsed) or [Item(payload, parsed)]
    try:
        check_depth(payload)
    except TooDeep:  # an event the platform parsed: too deep to be written out again as it is
        return [Item(f"<{TOO_DEEP_REASON}>", TOO_DEEP)]
    return _split(payload) or [Item(dump(payload), payload)]


def _split(parsed: object) -> list[Item]:
    """The items of a multi-modification payload, or [] when the payload is a single item."""
    if isinstance(parsed, dict) and set(parsed) == {"modifications"}:
        parsed = parsed["modifications"]
        if not isinstance(parsed, list):
            return []
    if isinstance(parsed, list) and parsed:
        return [Item(dump(element), element) for element in parsed]
    return []


def _loads(text: str) -> object:
    try:
        return loads(text.removeprefix("\ufeff"))
    except TooDeep:
        return TOO_DEEP
    except ValueError:
        return NOT_JSON


def dump(value: object) -> str:
    """Compact JSON, as each modification of a multi-modification payload is kept in ``raw``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
