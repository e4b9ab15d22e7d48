"""The dead-letter record of DESIGN: its document, its attributes on a queue message, and reading it back.

Every sink and every reader (redrive, maintenance) takes these from here; the routes at the package's door
choose the sink.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import datetime
from typing import Any, NamedTuple

from handler.compat import UTC
from handler.model import format_issued_at
from handler.order.travel import ISSUED_AT_ATTRIBUTE as ISSUED_AT_ATTRIBUTE  # re-exported: the sinks and send use it
from handler.order.travel import attribute_text, issued_time, record_fields
from handler.outcome import Outcome

KIND = "timpush.dead-letter"
VERSION = 1
REDRIVES_ATTRIBUTE = "Redrives"  # SQS message attribute: how many times this body was redriven
# tdmq-cmq:REGION/QUEUE: a Tencent region (ap-guangzhou) and a CMQ queue name (a letter, then letters,
# digits, - and _, at most 64 in all).
# As text: ``re`` compiles it on first use, so only a deployment with a TDMQ dead-letter queue pays for it.
_TDMQ_TARGET = r"(?P<region>[a-z]+(?:-[a-z]+)+(?:-[0-9]+)?)/(?P<queue>[A-Za-z][A-Za-z0-9_-]{0,63})"


# The invocation's deadline (time.monotonic scale), for a sink that backs off on throttled writes (tdmq-cmq);
# set by the SCF entry for the length of an invocation, None elsewhere.
WRITE_DEADLINE: ContextVar[float | None] = ContextVar("dead_letter_write_deadline", default=None)


class DeadLetterError(Exception):
    """A dead letter could not be written; the message must not be acknowledged."""


class Source(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    """Where a message came from: ``kind`` is sqs, http, schedule, direct, redrive or scf."""

    kind: str
    id: str | None = None
    receive_count: int | None = None

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": self.kind, "id": self.id}
        if self.receive_count is not None:
            doc["receive_count"] = self.receive_count
        return doc


def record(
    outcome: Outcome, source: Source, now: datetime | None = None, redrives: int = 0
) -> dict[str, Any]:
    """The dead-letter document for a failed outcome; ``raw`` is the text exactly as received.

    ``redrives`` is how many times the body was sent back to the work queue before this failure
    (``redrive_count`` of the message); written only when positive, so a first failure has no key.
    """
    failed_at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc: dict[str, Any] = {
        "kind": KIND, "version": VERSION, "error": _error(outcome), "request": outcome.request,
        "raw": outcome.raw, "source": source.as_dict(), "attempts": outcome.attempts, "failed_at": failed_at,
    }
    if outcome.issued_at is not None:
        doc["issued_at"] = format_issued_at(outcome.issued_at)
        if outcome.stamp is not None:  # the rest of its order key, so a redriven change keeps its place
            doc.update(record_fields(outcome.stamp))
    if outcome.sdkappid is not None:  # which app, when the modification got as far as choosing one
        doc["sdkappid"] = outcome.sdkappid
    if redrives > 0:
        doc["redrives"] = redrives
    return doc


def _error(outcome: Outcome) -> dict[str, Any]:
    """The record's ``error``: Tencent's (or the local) code and text, the class and where it arose."""
    return {
        "code": outcome.code,
        "info": outcome.info,
        "class": str(outcome.error_class) if outcome.error_class else "unknown",
        "origin": str(outcome.origin) if outcome.origin else "local",
    }


def redrive_count(message_attributes: Mapping[str, Any] | None) -> int:
    """The ``Redrives`` attribute of an SQS message, 0 when absent or unreadable.

    Takes both shapes: a Lambda event record (``stringValue``) and a boto3 ``receive_message``
    answer (``StringValue``).
    """
    attribute = (message_attributes or {}).get(REDRIVES_ATTRIBUTE)
    if not isinstance(attribute, Mapping):
        return 0
    value = attribute.get("stringValue", attribute.get("StringValue"))
    try:
        return max(int(str(value)), 0)
    except ValueError:
        return 0


def issued_at_attribute(message_attributes: Mapping[str, Any] | None) -> datetime | None:
    """The ``IssuedAt`` attribute of an SQS message (a redriven change), None when absent or unreadable."""
    return issued_time(attribute_text(message_attributes, ISSUED_AT_ATTRIBUTE))


def redrives_of(doc: Mapping[str, Any]) -> int:
    """The ``redrives`` of a dead-letter record (absent = 0)."""
    value = doc.get("redrives", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def fingerprint(doc: Mapping[str, Any]) -> str:
    """A dead letter's identity, the same however often and whenever it was written (DESIGN: dead letters are
    written at least once, and redrive applies each record once per run): sha256 hex of its raw body, code, source
    id and redrive count. The SQS sink's deduplication id, so a FIFO dead-letter queue drops a second write."""
    source = doc.get("source")
    source_id = source.get("id") if isinstance(source, Mapping) else None
    return digest(doc.get("raw"), doc["error"]["code"], source_id, redrives_of(doc))


def digest(*parts: object) -> str:
    """sha256 hex of the parts as JSON, 64 characters: a record's fingerprint, an SQS deduplication id."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()


def parse_record(text: str) -> dict[str, Any] | None:
    """The dead-letter document in ``text`` (a file line or a queue message), None when it is not one."""
    try:
        doc = json.loads(text)  # not handler.model.loads: a record we wrote may hold NaN, as json writes it
    except (ValueError, RecursionError):  # a queue's own dead letters may hold any body, nested thousands deep
        return None
    return doc if is_record(doc) else None


def is_record(doc: object) -> bool:
    """True for a dead-letter document this version can redrive (an object with ``raw`` and ``error``)."""
    return (
        isinstance(doc, dict)
        and doc.get("kind") == KIND
        and isinstance(doc.get("raw"), str)
        and isinstance(doc.get("error"), dict)
        and isinstance(doc["error"].get("code"), int)
    )


def parse_tdmq_target(target: str) -> tuple[str, str]:
    """(region, queue) of ``REGION/QUEUE``; ValueError naming the expected form otherwise."""
    match = re.fullmatch(_TDMQ_TARGET, target)
    if match is None:
        raise ValueError(f"tdmq-cmq:{target[:80]} is not tdmq-cmq:REGION/QUEUE (e.g. tdmq-cmq:ap-guangzhou/dlq)")
    return match["region"], match["queue"]
