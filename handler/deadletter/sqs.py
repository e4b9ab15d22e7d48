"""SQS for dead letters: the ``sqs:URL`` sink, and the queue operations redrive and maintenance share.

boto3 is imported here only, so a deployment that dead-letters to files never loads it. Clients are
built on first use and kept per (region, endpoint); boto3 itself reads ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_SQS``, which is how tests point the sink at a moto server. Every failure becomes
a ``QueueError`` (a ``DeadLetterError``) naming the queue and a count, never a message body.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from handler.deadletter.record import ISSUED_AT_ATTRIBUTE, REDRIVES_ATTRIBUTE, DeadLetterError, digest, redrives_of
from handler.deadletter.record import fingerprint as record_fingerprint
from handler.order.travel import key_attributes

fingerprint = digest  # a deduplication id from parts (SQS allows 128 characters): the sink's and send's

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

MAX_BATCH = 10  # SQS entries per batch call
MAX_BATCH_BYTES = 256 * 1024  # body + attributes per batch call (and so per message)
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 10.0  # above the longest receive wait used here
MAX_ATTEMPTS = 2  # the first try included
BOTO_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT,
    read_timeout=READ_TIMEOUT,
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},  # botocore's max_attempts counts retries only
)
UNKNOWN_GROUP = "unknown"  # MessageGroupId of a record whose TaskID is not known

_AWS_HOST = re.compile(r"^(?:sqs\.)?([a-z0-9-]+)\.(?:queue\.)?amazonaws\.com(?:\.cn)?$")
_CLIENTS: dict[tuple[str | None, str | None, int], SQSClient] = {}
_CLIENTS_LOCK = threading.Lock()


class QueueError(DeadLetterError):
    """An SQS call failed or refused some entries; the message names the queue and the count only, ``cause``
    says why in words (connection refused, no answer, no such queue, ...)."""

    def __init__(self, text: str, cause: str = "") -> None:
        super().__init__(text)
        self.cause = cause or text


@dataclass(frozen=True)
class Outgoing:
    """One message to send; ``group``/``dedup`` matter for FIFO queues only."""

    body: str
    attributes: Mapping[str, str | int] = field(default_factory=dict)
    group: str = UNKNOWN_GROUP
    dedup: str = ""


@dataclass(frozen=True)
class Received:
    message_id: str
    receipt: str
    body: str
    attributes: Mapping[str, Any]
    receive_count: int


def client_for(url: str, config: Config = BOTO_CONFIG) -> SQSClient:
    """The SQS client for a queue URL, built once per region, endpoint and configuration (timeouts, retries)."""
    region = _region_of(url)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_SQS") or os.environ.get("AWS_ENDPOINT_URL")
    key = (region, endpoint, id(config))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = boto3.session.Session().client("sqs", region_name=region, config=config)
        return _CLIENTS[key]


def forget_clients() -> None:
    """Drop the cached clients (tests that move the endpoint)."""
    with _CLIENTS_LOCK:
        _CLIENTS.clear()


def _region_of(url: str) -> str | None:
    """The region of an AWS queue URL; None (boto3's default) for anything else, e.g. a local server."""
    host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    if host == "queue.amazonaws.com":  # the legacy us-east-1 form
        return "us-east-1"
    match = _AWS_HOST.match(host)
    return match.group(1) if match else None


def is_fifo(url: str) -> bool:
    return url.rstrip("/").endswith(".fifo")


def task_id_of(doc: Mapping[str, Any]) -> str | None:
    """The record's TaskID as text when it is a usable one (a positive integer or digit string)."""
    request = doc.get("request")
    value = request.get("TaskID") if isinstance(request, dict) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return value
    return None


class Queue:
    """The SQS operations on one queue: batch send, receive, delete, release (``config``: the client's timeouts)."""

    def __init__(self, url: str, config: Config = BOTO_CONFIG) -> None:
        self.url = url
        self.fifo = is_fifo(url)
        self.name = f"sqs:{url}"
        self._config = config

    def send(self, messages: Sequence[Outgoing]) -> set[int]:
        """Send in batches; return the indices SQS refused. Raises QueueError when a call fails."""
        refused: set[int] = set()
        done = 0
        for chunk in _chunks(messages):
            try:
                answer = client_for(self.url, self._config).send_message_batch(
                    QueueUrl=self.url, Entries=[self._entry(done + i, m) for i, m in enumerate(chunk)]
                )
            except (ClientError, BotoCoreError) as exc:
                raise QueueError(f"{self.name}: {len(messages) - done} message(s) not sent "
                                 f"({len(refused)} refused before): {_reason(exc)}", cause_of(exc)) from exc
            refused.update(int(failure["Id"]) for failure in answer.get("Failed", []))
            done += len(chunk)
        return refused

    def receive(self, max_messages: int, wait: int, visibility: int) -> list[Received]:
        try:
            answer = client_for(self.url, self._config).receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=max(1, min(max_messages, MAX_BATCH)),
                WaitTimeSeconds=wait, VisibilityTimeout=visibility,
                MessageAttributeNames=["All"], MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (ClientError, BotoCoreError) as exc:
            raise QueueError(f"{self.name}: receive failed: {_reason(exc)}", cause_of(exc)) from exc
        return [_received(message) for message in answer.get("Messages", [])]

    def delete(self, receipts: Sequence[str]) -> int:
        """Delete by receipt handle; return how many SQS refused."""
        return self._per_batch("delete_message_batch", receipts, {})

    def release(self, receipts: Sequence[str]) -> int:
        """Make received messages visible again at once; return how many SQS refused."""
        return self._per_batch("change_message_visibility_batch", receipts, {"VisibilityTimeout": 0})

    def _per_batch(self, operation: str, receipts: Sequence[str], extra: dict[str, Any]) -> int:
        refused = 0
        call = getattr(client_for(self.url, self._config), operation)
        for start in range(0, len(receipts), MAX_BATCH):
            entries = [{"Id": str(i), "ReceiptHandle": r, **extra}
                       for i, r in enumerate(receipts[start:start + MAX_BATCH])]
            try:
                refused += len(call(QueueUrl=self.url, Entries=entries).get("Failed", []))
            except (ClientError, BotoCoreError) as exc:
                raise QueueError(f"{self.name}: {operation} failed for {len(receipts) - start} message(s): "
                                 f"{_reason(exc)}", cause_of(exc)) from exc
        return refused

    def _entry(self, index: int, message: Outgoing) -> SendMessageBatchRequestEntryTypeDef:
        entry: SendMessageBatchRequestEntryTypeDef = {
            "Id": str(index), "MessageBody": message.body,
            "MessageAttributes": {name: _attribute(value) for name, value in message.attributes.items()},
        }
        if self.fifo:
            entry["MessageGroupId"] = message.group
            entry["MessageDeduplicationId"] = message.dedup or fingerprint(message.body)
        return entry


class SqsSink:
    """Dead letters as SQS messages: the record as body, with attributes to filter and alarm on."""

    def __init__(self, queue_url: str) -> None:
        self._queue = Queue(queue_url)
        self.name = self._queue.name

    def write(self, records: list[dict[str, Any]]) -> None:
        refused = self._queue.send([dead_letter_message(doc) for doc in records])
        if refused:
            raise QueueError(f"{self.name}: {len(refused)} of {len(records)} dead letter(s) refused by SQS")


def dead_letter_message(doc: Mapping[str, Any]) -> Outgoing:
    """A record as an SQS message: group by TaskID, deduplicate on what makes the failure unique."""
    error = doc["error"]
    source = doc.get("source") or {}
    task_id = task_id_of(doc)
    attributes: dict[str, str | int] = {"ErrorCode": int(error["code"]), "ErrorClass": str(error["class"]),
                                        "Source": str(source.get("kind") or "unknown")}
    if task_id is not None:
        attributes["TaskID"] = task_id
    if isinstance(doc.get("issued_at"), str):
        attributes[ISSUED_AT_ATTRIBUTE] = doc["issued_at"]
    return Outgoing(
        body=json.dumps(doc, separators=(",", ":")),  # ASCII: SQS refuses some code points raw
        attributes=attributes,
        group=task_id or UNKNOWN_GROUP,
        dedup=record_fingerprint(doc),
    )


def work_message(doc: Mapping[str, Any]) -> Outgoing:
    """A record's original body for the work queue, counting this redrive and keeping its order key."""
    count = redrives_of(doc) + 1
    source = doc.get("source") or {}
    # the change's whole order key: the work queue gives the message a new id and SequenceNumber
    attributes: dict[str, str | int] = {REDRIVES_ATTRIBUTE: count, **key_attributes(doc)}
    return Outgoing(
        body=str(doc["raw"]),
        attributes=attributes,
        group=task_id_of(doc) or UNKNOWN_GROUP,
        dedup=fingerprint(doc["raw"], source.get("id"), count),
    )


def _attribute(value: str | int) -> MessageAttributeValueTypeDef:
    if isinstance(value, int):
        return {"DataType": "Number", "StringValue": str(value)}
    return {"DataType": "String", "StringValue": value}


def _received(message: MessageTypeDef) -> Received:
    count = message.get("Attributes", {}).get("ApproximateReceiveCount", "1")
    return Received(
        message_id=message.get("MessageId", ""), receipt=message.get("ReceiptHandle", ""),
        body=message.get("Body", ""), attributes=message.get("MessageAttributes", {}),
        receive_count=int(count) if count.isdigit() else 1,
    )


def _chunks(messages: Sequence[Outgoing]) -> Iterator[Sequence[Outgoing]]:
    """At most MAX_BATCH messages and MAX_BATCH_BYTES per chunk (an oversized message goes alone)."""
    start = 0
    while start < len(messages):
        end, size = start, 0
        while end < len(messages) and end - start < MAX_BATCH:
            size += _size(messages[end])
            if size > MAX_BATCH_BYTES and end > start:
                break
            end += 1
        yield messages[start:end]
        start = end


def _size(message: Outgoing) -> int:
    attributes = sum(len(k) + len(str(v)) + 6 for k, v in message.attributes.items())
    return len(message.body.encode("utf-8")) + attributes


_CAUSES = ((ConnectTimeoutError, "connect timed out"), (ReadTimeoutError, "no answer (read timed out)"),
           (EndpointConnectionError, "connection refused (or the address cannot be reached)"),
           (ConnectionClosedError, "connection dropped"))
_CLIENT_CAUSES = {"AWS.SimpleQueueService.NonExistentQueue": "no such queue", "QueueDoesNotExist": "no such queue",
                  "AccessDenied": "access denied", "AccessDeniedException": "access denied"}


def cause_of(exc: Exception) -> str:
    """Why an SQS call failed, in words (DESIGN: never a class name alone)."""
    for kind, words in _CAUSES:
        if isinstance(exc, kind):
            return words
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return _CLIENT_CAUSES.get(code, f"refused by SQS ({code or 'no code'})")
    return f"call failed: {exc}"


def _reason(exc: Exception) -> str:
    """The error code or class of a boto failure; botocore messages name the endpoint, never a body."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return f"{type(exc).__name__}: {exc}"
