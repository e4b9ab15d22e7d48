"""Order within one payload: a later entry for the same task counts as newer (DESIGN "Order").

Entries of one payload share one issue time, so the store cannot tell them apart; instead each entry
leaves out the fields a later entry of the same payload sets for the same task. Looked at before
validation, from the parsed JSON: an entry that turns out invalid still holds back the older value
it was meant to replace, so an older value is never applied over a newer intention.
"""

from __future__ import annotations

from collections.abc import Sequence

from handler.model import ORDERED_FIELDS, Item


def later_fields(items: Sequence[Item], only_app: int | None = None) -> list[frozenset[str]]:
    """For each item, the ordered fields that a later item for the same task sets.

    The same task: the same TaskID and app. An entry without Sdkappid is for ``only_app`` when the deployment
    serves one app; with several it names no app (it is refused) and holds back only entries like it.
    """
    seen: dict[tuple[str, str], set[str]] = {}
    out: list[frozenset[str]] = []
    for item in reversed(items):
        key = _task(item.parsed, only_app)
        out.append(frozenset(seen.get(key, ())) if key else frozenset())
        if key:
            seen.setdefault(key, set()).update(_fields(item.parsed))
    return out[::-1]


def _task(parsed: object, only_app: int | None) -> tuple[str, str] | None:
    if not isinstance(parsed, dict) or isinstance(parsed.get("TaskID"), bool | float):
        return None
    task_id = str(parsed.get("TaskID", "")).lstrip("0")
    app = parsed.get("Sdkappid", only_app)
    return ("" if app is None else str(app), task_id) if task_id.isdigit() else None


def _fields(parsed: object) -> set[str]:
    return {name for name in ORDERED_FIELDS if isinstance(parsed, dict) and parsed.get(name) is not None}
