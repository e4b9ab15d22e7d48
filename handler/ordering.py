"""Order within one payload: a later entry for the same task counts as newer (DESIGN "Order").

Entries of one payload share one issue time, so the store cannot tell them apart; instead each entry
leaves out the fields a later entry of the same payload sets for the same task. Looked at before
validation, from the parsed JSON: an entry that turns out invalid still holds back the older value
it was meant to replace, so an older value is never applied over a newer intention.
"""

from __future__ import annotations

from collections.abc import Sequence

from handler.model import ORDERED_FIELDS, Item


def later_fields(items: Sequence[Item]) -> list[frozenset[str]]:
    """For each item, the ordered fields that a later item for the same task sets.

    The same task: the same TaskID, and the same Sdkappid or one of the two without it (with one app that is
    the app; with several an entry without it is refused, yet still holds back the value it meant to replace).
    """
    seen: list[tuple[str, str, set[str]]] = []
    out: list[frozenset[str]] = []
    for item in reversed(items):
        key = _task(item.parsed)
        if key is None:
            out.append(frozenset())
            continue
        app, task = key
        out.append(frozenset(name for other_app, other_task, names in seen if other_task == task
                             and (not app or not other_app or app == other_app) for name in names))
        seen.append((app, task, _fields(item.parsed)))
    return out[::-1]


def _task(parsed: object) -> tuple[str, str] | None:
    if not isinstance(parsed, dict) or isinstance(parsed.get("TaskID"), bool | float):
        return None
    task_id = str(parsed.get("TaskID", "")).lstrip("0")
    app = parsed.get("Sdkappid")
    return ("" if app is None else str(app), task_id) if task_id.isdigit() else None


def _fields(parsed: object) -> set[str]:
    return {name for name in ORDERED_FIELDS if isinstance(parsed, dict) and parsed.get(name) is not None}
