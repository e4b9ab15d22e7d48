"""A task's history (DESIGN "Task history: who moved my push?"): one entry per modification that reached a final
outcome (succeeded, superseded, dead-lettered), kept by the state store beside the task's order.

The service makes a ``Draft`` once it knows the task (validated, app resolved); the order writes the entry in the
same store write as the outcome's own (``TaskOrder``: the record of a success, the release of a superseded
change's lease), or in one write of its own (a dead letter, a change superseded without taking the lease).

An entry is one JSON text of at most MAX_ENTRY_BYTES (UTF-8), whatever a producer sends: every text in it is cut
(ids to ID_MAX characters, the title to TITLE_MAX) and cleaned of what UTF-8 cannot carry, so that the newest CAP
entries of a task stay far below DynamoDB's 400 KB item and a bounded share of Redis's memory. It never holds a
user id: ``Content`` is a digest (without ``To_Account``) and the push title.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit

from handler.compat import UTC
from handler.model import format_issued_at
from handler.observability import logger, metrics, on_scf
from handler.order.key import Stamp, TaskKey

CAP = 50  # entries kept per task, the newest
ID_MAX = 80  # characters of a change's or request's id
TITLE_MAX = 40  # characters of OfflinePushInfo.Title
SOURCE_MAX = 16
DIGEST_BYTES = 8  # Content's digest: 16 hex digits
# Worst case, every cut text made of characters JSON escapes as \u00XX (6 bytes each): 4 ids of 80 (change,
# request, two superseded_by) = 1,920 B, a title of 40 = 240 B, a source of 16 = 96 B, then two times, SchedAt, the
# digest, a 64-bit code and the keys: 2,566 B (tests/unit/test_history.py builds it); a usual entry is ~430 B.
MAX_ENTRY_BYTES = 2_800  # so 50 entries stay under 140 KB
USER_IDS = ("To_Account",)  # never in an entry, not even inside the digest

# Outcomes an entry may have (the log line's ``outcome``)
SUCCEEDED, SUPERSEDED, DEAD_LETTERED = "succeeded", "superseded", "dead_lettered"


def change_id(stamp: Stamp) -> str:
    """How an entry names a change: its id, and its position when it is not a payload's first entry."""
    return _cut(f"{stamp.by}#{stamp.pos}" if stamp.pos else stamp.by or "-", ID_MAX)


def fields_of(sched_at: str | None, content: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ordered fields as an entry keeps them: SchedAt as sent, Content as a digest and the title."""
    out: dict[str, Any] = {}
    if sched_at is not None:
        out["SchedAt"] = _cut(sched_at, 19)
    if content is not None:
        out["Content"] = _content(content)
    return out


def _content(content: Mapping[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in content.items() if key not in USER_IDS}
    text = json.dumps(kept, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)
    summary: dict[str, Any] = {"digest": hashlib.blake2b(text.encode(), digest_size=DIGEST_BYTES).hexdigest()}
    push = content.get("OfflinePushInfo")
    title = push.get("Title") if isinstance(push, Mapping) else None
    if isinstance(title, str):
        summary["title"] = _cut(title, TITLE_MAX)
    return summary


class Draft(NamedTuple):
    """What an entry says of a change before its outcome is known."""

    task: TaskKey
    stamp: Stamp
    source: str
    fields: Mapping[str, Any]
    request_id: str | None = None
    left_out: Mapping[str, Stamp] = MappingProxyType({})  # field -> the change that won it

    def entry(self, outcome: str, code: int, at: float) -> str:
        """The entry as the store keeps it: one bounded JSON text. ``at``: seconds since the epoch."""
        doc = {
            "at": format_issued_at(datetime.fromtimestamp(at, UTC)),
            "outcome": outcome,
            "error_code": code,
            "change": change_id(self.stamp),
            "source": _cut(self.source, SOURCE_MAX),
            "issued_at": format_issued_at(datetime.fromtimestamp(self.stamp.issued_ms / 1000, UTC)),
            "fields": dict(self.fields),
            "superseded_by": {name: change_id(won) for name, won in self.left_out.items()},
            "request_id": _cut(self.request_id, ID_MAX) if self.request_id else None,
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def not_written(task: TaskKey, store: str, exc: Exception) -> None:
    """A history that cannot be written: a WARNING and metric ``HistoryNotWritten``; the modification goes on."""
    fields: dict[str, Any] = {"task_id": task.task_id, "sdkappid": task.sdkappid, "store": store, "reason": str(exc)}
    if on_scf():
        fields["metrics"] = {"HistoryNotWritten": 1}
    else:
        metrics.add_metric(name="HistoryNotWritten", unit=MetricUnit.Count, value=1)
    logger.warning("task history not written", extra=fields)


def newest(entries: Collection[str], limit: int = CAP) -> list[dict[str, Any]]:
    """The newest ``limit`` of a task's entries (oldest first, as kept), read back; unreadable ones are skipped."""
    out = []
    for text in list(entries)[-limit:] if limit > 0 else []:
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


def _cut(text: str, most: int) -> str:
    """At most ``most`` characters, with what UTF-8 cannot carry (a lone surrogate) replaced."""
    return text[:most].encode("utf-8", "replace").decode("utf-8")
