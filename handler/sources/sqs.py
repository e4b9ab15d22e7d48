"""SQS batches (standard and FIFO) through powertools' partial batch processors.

A record handler returns normally when the message is finished (succeeded, or dead-lettered with its
code) and raises when the message must come back (retryable with deliveries left, or its dead
letter could not be written), so powertools lists exactly those in ``batchItemFailures``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from handler.compat import UTC
from handler.deadletter import DeadLetterError, Source, issued_at_attribute, record, redrive_count
from handler.model import Item, split_payload
from handler.observability import DEAD_LETTERED, RETRY, logger, report_all
from handler.outcome import Outcome
from handler.runtime import Runtime
from handler.state import Issue


class RetryLater(Exception):
    """Raised for a message SQS should deliver again; powertools lists it in batchItemFailures."""


def is_fifo(event: dict[str, Any]) -> bool:
    records = event.get("Records") or [{}]
    return str(records[0].get("eventSourceARN", "")).endswith(".fifo")


def handle(event: dict[str, Any], context: Any, runtime: Runtime, deadline: float) -> dict[str, Any]:
    processor: BatchProcessor | SqsFifoPartialProcessor
    if is_fifo(event):
        processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    else:
        processor = BatchProcessor(event_type=EventType.SQS)
    # A batch that fails entirely must still answer with its item failures, not raise: raising makes
    # SQS redeliver every message, including any already dead-lettered.
    processor.raise_on_entire_batch_failure = False

    def on_record(record: SQSRecord) -> None:  # powertools passes it by this keyword
        try:
            _handle_message(record, runtime, deadline)
        except RetryLater:
            raise
        except Exception:
            # Unexpected: keep the message (it is listed for redelivery) and say why, loudly.
            logger.exception("message failed unexpectedly; left for redelivery",
                             extra={"message_id": record.message_id})
            raise

    return dict(process_partial_response(event, on_record, processor, context))


def _handle_message(message: SQSRecord, runtime: Runtime, deadline: float) -> None:
    logger.set_correlation_id(message.message_id)
    receives = int(message.attributes.approximate_receive_count or 1)
    source = Source("sqs", message.message_id, receives)
    items = split_payload(unwrap_sns(message.body))
    outcomes = runtime.modifier.apply_all(items, deadline, issue_of(message))
    if any(o.retryable for o in outcomes) and receives < runtime.settings.max_receives:
        report_all(outcomes, RETRY, source.as_dict())
        raise RetryLater(f"message {message.message_id}: retryable failure, delivery {receives}")
    redrives = redrive_count(message.raw_event.get("messageAttributes"))
    _finish(message.body, items, outcomes, source, runtime, redrives)


def _finish(body: str, items: list[Item], outcomes: list[Outcome], source: Source, runtime: Runtime,
            redrives: int) -> None:
    """Dead-letter what failed. A lone modification keeps the body exactly as SQS delivered it."""
    failed = [o for o in outcomes if o.failed]
    docs = [record(o, source, redrives=redrives) for o in failed]
    if len(items) == 1 and docs:
        docs[0]["raw"] = body
    try:
        runtime.dead_letters.send(docs)
    except DeadLetterError as exc:  # logged with its records by send: the message stays in its queue
        raise RetryLater(str(exc)) from exc
    report_all(outcomes, DEAD_LETTERED, source.as_dict())


def issue_of(message: SQSRecord) -> Issue:
    """When the change was made: a redriven message's ``IssuedAt`` attribute, else when SQS received it."""
    at = issued_at_attribute(message.raw_event.get("messageAttributes"))
    if at is None:
        sent = message.attributes.sent_timestamp
        at = datetime.fromtimestamp(int(sent) / 1000, UTC) if sent and sent.isdigit() else datetime.now(UTC)
    return Issue(at, f"sqs:{message.message_id}")


def unwrap_sns(body: str) -> str:
    """The modification text inside an SNS notification (SNS to SQS fan-out), else the body itself."""
    if '"Notification"' not in body:
        return body
    try:
        envelope = json.loads(body)
    except ValueError:
        return body
    if isinstance(envelope, dict) and envelope.get("Type") == "Notification" and "Message" in envelope:
        return str(envelope["Message"])
    return body
