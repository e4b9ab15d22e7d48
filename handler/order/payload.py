"""Order within one payload: a later entry for the same task holds back what it sets (DESIGN "Order").

Entries of one payload share their issue time unless they give their own ``IssuedAt``; their order keys then
differ in position only, the later one greater. Instead of leaving that to the store (a lease call per
entry), each entry leaves out the fields that a later entry of the same payload sets for the same task with
a greater key: always when the issue times are equal, never when the later entry's own ``IssuedAt`` is older
(then this entry is the newer change, and the store supersedes the later one). Looked at before validation,
from the parsed JSON: an entry that turns out invalid still holds back the older value it was meant to
replace, so an older value is never applied over a newer intention; an ``IssuedAt`` that cannot be read
counts as the payload's issue time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from handler.model import ORDERED_FIELDS, Item, parse_issued_at
from handler.order.key import Issue, Stamp


def later_changes(items: Sequence[Item], issues: Sequence[Issue], only_app: int | None = None,
                  ) -> list[dict[str, Stamp]]:
    """For each item, the ordered fields that a later item for the same task sets with a greater key, each with
    the stamp of the newest such item (the change that wins it: a task's history names it).

    ``issues[i]`` is item i's issue (the payload's, at its position). The same task: the same TaskID and
    app. An entry without Sdkappid is for ``only_app`` when the deployment serves one app; with several it
    names no app (it is refused) and holds back only entries like it.
    """
    if len(items) < 2:
        return [{} for _ in items]
    newest: dict[tuple[str, str], dict[str, Stamp]] = {}  # task -> field -> the greatest stamp of a later entry
    out: list[dict[str, Stamp]] = []
    for item, issue in zip(reversed(items), reversed(issues), strict=True):
        task = _task(item.parsed, only_app)
        if task is None:
            out.append({})
            continue
        stamp = entry_stamp(item.parsed, issue)
        later = newest.setdefault(task, {})
        out.append({name: other for name, other in later.items() if other.key > stamp.key})
        for name in _fields(item.parsed):
            if name not in later or later[name].key < stamp.key:
                later[name] = stamp
    return out[::-1]


def entry_stamp(parsed: object, issue: Issue) -> Stamp:
    """An entry's order key as validation will give it: its own ``IssuedAt`` when readable, else the issue's."""
    return issue.stamp(_issued_at(parsed) or issue.at, issue.pos)


def _issued_at(parsed: object) -> datetime | None:
    value = parsed.get("IssuedAt") if isinstance(parsed, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return parse_issued_at(value)
    except ValueError:  # Invalid, and any other reading of a bad time
        return None


def _task(parsed: object, only_app: int | None) -> tuple[str, str] | None:
    if not isinstance(parsed, dict) or isinstance(parsed.get("TaskID"), bool | float):
        return None
    task_id = str(parsed.get("TaskID", "")).lstrip("0")
    app = parsed.get("Sdkappid", only_app)
    return ("" if app is None else str(app), task_id) if task_id.isdigit() else None


def _fields(parsed: object) -> set[str]:
    return {name for name in ORDERED_FIELDS if isinstance(parsed, dict) and parsed.get(name) is not None}
