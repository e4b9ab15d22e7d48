"""A change's order key on its travels (DESIGN "Order"): into its dead letter, through redrive, and back.

The key is issue time, the queue's own order, the change's id, position. A dead-letter record keeps it as
``issued_at`` with ``issued_by`` (the change's id), ``issued_seq`` and ``issued_pos`` (absent = 0). A body
sent back to the work queue carries it as message attributes ``IssuedAt``, ``IssuedBy``, ``IssuedSeq`` and
``IssuedPos``: SQS gives the redriven message a new id (and, on a FIFO queue, a new SequenceNumber), and a
redriven change must keep its place, neither beating the change that won a tie nor losing to it when it won.
A record written before the key travelled has no ``issued_by``: its id was ``KIND:ID`` of its ``source``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from handler.model import parse_issued_at
from handler.order.key import KEY_WIDTHS, Issue, Stamp

ISSUED_AT_ATTRIBUTE = "IssuedAt"  # SQS message attribute: when the change was made
BY_ATTRIBUTE, SEQ_ATTRIBUTE, POS_ATTRIBUTE = "IssuedBy", "IssuedSeq", "IssuedPos"  # ... and the rest of its key
MAX_SEQ = 10 ** KEY_WIDTHS[1] - 1
MAX_POS = 10 ** KEY_WIDTHS[3] - 1
NO_ID = "-"  # IssuedBy of a change without an id (an attribute cannot be empty)


def record_fields(stamp: Stamp) -> dict[str, Any]:
    """What a dead-letter record keeps of a key beside ``issued_at``: the id, and queue order and position
    when not 0 (the queue order as digits: a SequenceNumber is 128 bits, more than a JSON reader may keep)."""
    fields: dict[str, Any] = {"issued_by": stamp.by}
    if stamp.seq:
        fields["issued_seq"] = str(stamp.seq)
    if stamp.pos:
        fields["issued_pos"] = stamp.pos
    return fields


def issue_of_record(doc: Mapping[str, Any], now: datetime) -> Issue:
    """The issue a record's change keeps when it is applied again (``now`` when the record has no time)."""
    by, seq, pos = _rest(doc)
    return Issue(issued_time(doc.get("issued_at")) or now, by, seq=seq, pos=pos)


def key_attributes(doc: Mapping[str, Any]) -> dict[str, str | int]:
    """The message attributes that carry a record's key to the work queue (none without ``issued_at``)."""
    if issued_time(doc.get("issued_at")) is None:
        return {}
    by, seq, pos = _rest(doc)
    return {ISSUED_AT_ATTRIBUTE: str(doc["issued_at"]), BY_ATTRIBUTE: by or NO_ID, SEQ_ATTRIBUTE: str(seq),
            POS_ATTRIBUTE: pos}


def carried_issue(attributes: Mapping[str, Any] | None) -> Issue | None:
    """The issue a redriven message carries in its attributes, None when it carries no ``IssuedBy``.

    Takes both shapes: a Lambda event record (``stringValue``) and a boto3 answer (``StringValue``).
    """
    at = issued_time(attribute_text(attributes, ISSUED_AT_ATTRIBUTE))
    by = attribute_text(attributes, BY_ATTRIBUTE)
    if at is None or by is None:
        return None
    return Issue(at, "" if by == NO_ID else by, seq=_count(attribute_text(attributes, SEQ_ATTRIBUTE), MAX_SEQ),
                 pos=_count(attribute_text(attributes, POS_ATTRIBUTE), MAX_POS))


def attribute_text(attributes: Mapping[str, Any] | None, name: str) -> str | None:
    attribute = (attributes or {}).get(name)
    if not isinstance(attribute, Mapping):
        return None
    value = attribute.get("stringValue", attribute.get("StringValue"))
    return value if isinstance(value, str) else None


def queue_order(text: object) -> int:
    """A FIFO ``SequenceNumber`` as the key's queue order; 0 when absent or not one."""
    return _count(text, MAX_SEQ)


def issued_time(value: object) -> datetime | None:
    """An ``issued_at`` (or ``IssuedAt`` attribute) as an aware time, None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return parse_issued_at(value)
    except ValueError:  # handler.model.Invalid is a ValueError
        return None


def _rest(doc: Mapping[str, Any]) -> tuple[str, int, int]:
    """The key after the time: the change's id, queue order, position."""
    by = doc.get("issued_by")
    return (by if isinstance(by, str) else _former_id(doc), _count(doc.get("issued_seq"), MAX_SEQ),
            _count(doc.get("issued_pos"), MAX_POS))


def _former_id(doc: Mapping[str, Any]) -> str:
    """The id a record written before ``issued_by`` was ordered by: ``KIND:ID`` of its source."""
    source = doc.get("source")
    if not isinstance(source, Mapping) or source.get("id") is None:
        return ""
    return f"{source.get('kind')}:{source.get('id')}"


def _count(value: object, most: int) -> int:
    """A non-negative whole number up to ``most`` given as an int or digits; 0 for anything else."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= len(str(most)):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most:
        return value
    return 0
