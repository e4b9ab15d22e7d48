"""SQS batches (standard and FIFO) with partial batch responses.

A record handler returns normally when the message is finished (succeeded, or dead-lettered with its
code) and raises when the message must come back (retryable with deliveries left, or its dead
letter could not be written), so exactly those are listed in ``batchItemFailures``.

The loop is ours rather than powertools' ``process_partial_response``: importing powertools' batch utilities
costs every SQS cold start ~15-25 ms (asyncio, and every event data class), for a loop of a few lines. It
answers as ``BatchProcessor`` and ``SqsFifoPartialProcessor(skip_group_on_error=True)`` do with
``raise_on_entire_batch_failure = False`` (tests/unit/test_sqs_batch.py compares the two).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from handler.compat import UTC
from handler.deadletter.record import DeadLetterError, Source, issued_at_attribute, redrive_count
from handler.model import Item, loads, split_payload
from handler.observability import logger
from handler.order.key import Issue, text_id
from handler.order.travel import carried_issue, queue_order
from handler.outcome import RETRY, Outcome, report_all
from handler.runtime import Runtime
from handler.sources import MalformedEvent, direct
from handler.sources.times import platform_time

# What Lambda puts in every SQS record, and its type; a record without one of them was made by hand.
RECORD_KEYS: tuple[tuple[str, type], ...] = (("messageId", str), ("body", str), ("attributes", dict))


class RetryLater(Exception):
    """Raised for a message SQS should deliver again; it is listed in batchItemFailures."""


class SQSRecord:
    """One record of the batch, read as powertools' ``SQSRecord`` reads it (``check_records`` ran first)."""

    def __init__(self, raw_event: dict[str, Any]) -> None:
        self.raw_event = raw_event

    @property
    def message_id(self) -> str:
        value: str = self.raw_event["messageId"]
        return value

    @property
    def body(self) -> str:
        value: str = self.raw_event["body"]
        return value

    @property
    def attributes(self) -> _Attributes:
        return _Attributes(self.raw_event["attributes"])


class _Attributes:
    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw

    @property
    def approximate_receive_count(self) -> str:
        value: str = self._raw.get("ApproximateReceiveCount", "")  # absent: the first delivery
        return value

    @property
    def sent_timestamp(self) -> str:
        value: str = self._raw.get("SentTimestamp", "")  # absent: issued when received
        return value


def partial_response(records: list[Any], on_record: Callable[[SQSRecord], None], fifo: bool) -> dict[str, Any]:
    """Run ``on_record`` on each record; list those it raised for. In a FIFO batch, once a message of a group
    is to come back, the rest of that group is listed without being run (their order must hold)."""
    failed: list[SQSRecord] = []
    failed_groups: set[str] = set()
    for raw in records:
        group = raw.get("attributes", {}).get("MessageGroupId") if fifo else None
        message = SQSRecord(raw)
        if group in failed_groups:
            failed.append(message)
            continue
        try:
            on_record(message)
        except Exception:  # listed for redelivery; on_record logs what it did not expect
            failed.append(message)
            if group:
                failed_groups.add(group)
    return {"batchItemFailures": [{"itemIdentifier": message.message_id} for message in failed]}


def is_fifo(event: dict[str, Any]) -> bool:
    records = event.get("Records") or [{}]
    return str(records[0].get("eventSourceARN", "")).endswith(".fifo")


def handle(event: dict[str, Any], context: Any, runtime: Runtime, deadline: float) -> dict[str, Any]:
    # A batch that fails entirely still answers with its item failures, never raises: raising makes
    # SQS redeliver every message, including any already dead-lettered.
    def on_record(record: SQSRecord) -> None:
        try:
            _handle_message(record, runtime, deadline)
        except RetryLater:
            raise
        except Exception:
            # Unexpected: keep the message (it is listed for redelivery) and say why, loudly.
            logger.exception("message failed unexpectedly; left for redelivery",
                             extra={"message_id": text_id(record.message_id)})
            raise

    return partial_response(check_records(event["Records"]), on_record, is_fifo(event))


def check_records(records: list[Any]) -> list[Any]:
    """The records, each with what Lambda always sends; else MalformedEvent naming the first that lacks it,
    before any record is run (a record without ``messageId`` could not even be listed for redelivery)."""
    for index, raw in enumerate(records):
        if not isinstance(raw, dict):
            raise MalformedEvent(f"Records[{index}]: a JSON {type(raw).__name__}, not an SQS record")
        for key, kind in RECORD_KEYS:
            if not isinstance(raw.get(key), kind):
                problem = "missing" if key not in raw else f"not a JSON {'object' if kind is dict else 'string'}"
                raise MalformedEvent(f"Records[{index}].{key}: {problem}; an SQS record as Lambda delivers it has "
                                     "messageId, body and attributes")
    return records


def _handle_message(message: SQSRecord, runtime: Runtime, deadline: float) -> None:
    message_id = text_id(message.message_id)  # as valid text for logs and dead letters; the answer keeps it as is
    logger.set_correlation_id(message_id)
    receives = int(message.attributes.approximate_receive_count or 1)
    source = Source("sqs", message_id, receives)
    items = split_payload(unwrap_sns(message.body))
    outcomes = runtime.modifier.apply_all(items, deadline, issue_of(message))
    if any(o.retryable for o in outcomes) and receives < runtime.settings.max_receives:
        report_all(outcomes, RETRY, source.as_dict())
        raise RetryLater(f"message {message_id}: retryable failure, delivery {receives}")
    redrives = redrive_count(message.raw_event.get("messageAttributes"))
    _finish(message.body, items, outcomes, source, runtime, redrives)


def _finish(body: str, items: list[Item], outcomes: list[Outcome], source: Source, runtime: Runtime,
            redrives: int) -> None:
    """Dead-letter what failed. A lone modification keeps the body exactly as SQS delivered it."""
    try:
        direct.finish(outcomes, source, runtime, body if len(items) == 1 else None, redrives)
    except DeadLetterError as exc:  # logged with its records by send: the message stays in its queue
        raise RetryLater(str(exc)) from exc


def issue_of(message: SQSRecord) -> Issue:
    """The change's order key as the message gives it (DESIGN "Order").

    A redriven message carries its change's whole key in its attributes (``IssuedBy`` and kin): its own id
    and SequenceNumber are new. Else: an ``IssuedAt`` attribute (``timpush send``) or when SQS received it,
    this message's id, and on a FIFO queue its SequenceNumber, which orders the messages of a batch that SQS
    stamped with one SentTimestamp.
    """
    attributes = message.raw_event.get("messageAttributes")
    carried = carried_issue(attributes)
    if carried is not None:
        return carried._replace(source="sqs")  # its own id, and the trigger that brought it back
    at = issued_at_attribute(attributes)
    if at is None:
        sent = message.attributes.sent_timestamp or None  # absent: issued when received
        at = platform_time(sent, datetime.now(UTC), "attributes.SentTimestamp")
    sequence = message.raw_event["attributes"].get("SequenceNumber")
    return Issue(at, f"sqs:{message.message_id}", seq=queue_order(sequence))


def unwrap_sns(body: str) -> str:
    """The modification text inside an SNS notification (SNS to SQS fan-out), else the body itself."""
    if '"Notification"' not in body:
        return body
    try:
        envelope = loads(body)
    except ValueError:  # TooDeep included: the body is then refused as the modification it claims to be
        return body
    if isinstance(envelope, dict) and envelope.get("Type") == "Notification" and "Message" in envelope:
        return str(envelope["Message"])
    return body
