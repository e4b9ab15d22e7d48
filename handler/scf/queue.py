"""SCF's queue triggers: CKafka and CMQ Topic batches (``Records[]``), TDMQ through EventBridge (one event,
or a batch ``{"EventList": [event, ...]}`` when the rule delivers in batches, 583/59100).

SCF has no partial-batch answer and replays a whole CKafka batch after an error (up to 10,000 times by
default), so each message is finished on its own and at once: applied (retryable failures are retried
within the invocation by the modifier), then every failure, a retryable one whose attempts are spent
included, is dead-lettered with its code. The invocation raises only when a dead letter cannot be
written: then the replay keeps the message. A record without a message body is itself dead-lettered
(``invalid``, its record as ``raw``), so nothing is dropped.

Issue time (``IssuedAt``, which orders changes to one task): a modification's own, else the time the event
gives (CMQ ``publishTime``, TDMQ ``time``), else the time the invocation received it (CKafka's records
carry none). An event time after the receipt is taken as the receipt: a publisher cannot be ahead of it;
one that is not a usable time is ignored with a WARNING (``handler.sources.times``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

from handler.compat import UTC
from handler.deadletter.record import Source
from handler.im import codes
from handler.im.codes import ErrorClass, Origin
from handler.order.key import text_id
from handler.outcome import Outcome, Status
from handler.runtime import Runtime
from handler.sources import direct
from handler.sources.times import platform_time

SOURCE_KIND = "scf"
RECORD_KEYS = {"ckafka": "Ckafka", "cmq": "CMQ"}  # the key of each record in Records[] (note "Ckafka")


class Message(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    """One queue message: ``body`` is its ``msgBody`` (None when the record has none), ``where`` names
    the record in the event for error text, ``issued`` the time the event says it was published."""

    id: str
    body: Any
    where: str
    record: Any
    issued: Any = None  # as the event gives it: epoch milliseconds, ISO 8601, or anything a hand-made event holds
    time_field: str = "time"  # where ``issued`` is in the event, for a warning


def kind_of(event: Any) -> str | None:
    """``ckafka``, ``cmq``, ``tdmq`` or ``eventlist`` for a queue event, None for anything else."""
    if not isinstance(event, dict):
        return None
    if isinstance(event.get("EventList"), list):
        return "eventlist"
    data = event.get("data")
    if (isinstance(data, dict) and "msgBody" in data) or ("specversion" in event and "data" in event):
        return "tdmq"  # an EventBridge event (CloudEvents): its data is the producer's, whatever it holds
    records = event.get("Records")
    first = records[0] if isinstance(records, list) and records else None
    if isinstance(first, dict):
        for kind, key in RECORD_KEYS.items():
            if isinstance(first.get(key), dict):
                return kind
    return None


def handle(kind: str, event: dict[str, Any], runtime: Runtime, deadline: float) -> dict[str, Any]:
    received = datetime.now(UTC)
    outcomes: list[Outcome] = []
    for message in messages(kind, event):
        issued = issue_time(message.issued, received, message.time_field)
        outcomes.extend(_finish(message, runtime, deadline, issued))
    return direct.summary(outcomes)


def issue_time(given: object, received: datetime, field: str = "time") -> datetime:
    """The event's time (epoch milliseconds, or ISO 8601 with an offset), capped at ``received``: a publisher
    cannot be ahead of it. ``received`` itself when the event gives none, or (with a WARNING) an unusable one."""
    return min(platform_time(given, received, field), received)


def _finish(message: Message, runtime: Runtime, deadline: float, issued: datetime) -> list[Outcome]:
    source = Source(SOURCE_KIND, text_id(message.id))
    if message.body is None:
        outcome = _no_body(message, issued)
        direct.finish([outcome], source, runtime)
        return [outcome]
    raw = message.body if isinstance(message.body, str) else None
    return direct.apply(message.body, source, runtime, deadline, raw=raw, issued=issued)


def _no_body(message: Message, issued: datetime) -> Outcome:
    problem = {"field": f"{message.where}.msgBody", "message": f"{message.where}.msgBody: missing (a string)"}
    raw = json.dumps(message.record, ensure_ascii=False, default=str)
    return Outcome(Status.FAILED, raw, None, codes.INVALID_PARAMETERS, problem["message"], ErrorClass.INVALID,
                   Origin.LOCAL, errors=(problem,), issued_at=issued)


def messages(kind: str, event: dict[str, Any]) -> list[Message]:
    if kind == "tdmq":
        return [_tdmq(event)]
    if kind == "eventlist":
        return [_event(index, each) for index, each in enumerate(event["EventList"])]
    key = RECORD_KEYS[kind]
    return [_record(kind, key, index, record) for index, record in enumerate(event["Records"])]


def _record(kind: str, key: str, index: int, record: Any) -> Message:
    where = f"Records[{index}].{key}"
    inner = record.get(key) if isinstance(record, dict) else None
    if not isinstance(inner, dict):
        return Message(f"{kind}:record-{index}", None, where, record)
    if kind == "ckafka":
        ident = f"ckafka:{_part(inner.get('topic'))}/{_part(inner.get('partition'))}/{_part(inner.get('offset'))}"
        return Message(ident, inner.get("msgBody"), where, record)
    ident = f"cmq:{_part(inner.get('topicName') or inner.get('queueName'))}/{_part(inner.get('msgId'))}"
    return Message(ident, inner.get("msgBody"), where, record, inner.get("publishTime"),
                   f"{where}.publishTime")


def _tdmq(event: dict[str, Any], where: str = "data") -> Message:
    """A TDMQ message through EventBridge; an event whose ``data`` is not one is a message without a body."""
    data = event.get("data")
    time_field = where.removesuffix("data") + "time"
    if not isinstance(data, dict):
        return Message(f"eventbridge:{_part(event.get('id'))}", None, where, event, event.get("time"), time_field)
    ident = f"tdmq:{_part(data.get('topic'))}/{_part(data.get('msgId') or event.get('id'))}"
    return Message(ident, data.get("msgBody"), where, event, event.get("time"), time_field)


def _event(index: int, event: Any) -> Message:
    """One event of a batch; one that is not an object is a message without a body."""
    if isinstance(event, dict):
        return _tdmq(event, f"EventList[{index}].data")
    return Message(f"eventbridge:event-{index}", None, f"EventList[{index}].data", event)


def _part(value: Any) -> str:
    """One part of a message's id: text or a number as it is, anything else (a hand-made event) by its kind."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    return "None" if value is None else f"<{type(value).__name__}>"
