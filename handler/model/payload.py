"""Payloads: one modification, a JSON array of them, or ``{"modifications": [...]}``, split into items that keep
each modification's text as received (or its own JSON)."""

from __future__ import annotations

import json
from typing import Final, NamedTuple


class _NotJson:
    def __repr__(self) -> str:
        return "NOT_JSON"


NOT_JSON: Final = _NotJson()  # Item.parsed when the text was not JSON


class Item(NamedTuple):
    """One modification's text as received (or its own JSON, when a payload carried several)."""

    raw: str
    parsed: object  # the JSON value, or NOT_JSON


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
        return json.loads(text.removeprefix("\ufeff"), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return NOT_JSON


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def dump(value: object) -> str:
    """Compact JSON, as each modification of a multi-modification payload is kept in ``raw``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
