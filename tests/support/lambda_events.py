"""Real-shaped Lambda events for tests that drive ``handler.lambda_handler`` directly.

SQS records follow ``events/sqs-standard.json``; HTTP events start from ``events/http-api-v2.json``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from handler import runtime
from timpush.demo import EVENTS

ROOT = Path(__file__).resolve().parents[2]

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:timpush-modifier-dev-work"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:timpush-modifications"
_LAST_SENT = [0]


def sent_ms() -> int:
    """Now in ms, and always later than the last one given: records made one after another are sent in
    that order, as SQS would stamp them (a tie would make the second one no newer than the first)."""
    _LAST_SENT[0] = max(int(time.time() * 1000), _LAST_SENT[0] + 1)
    return _LAST_SENT[0]
_HTTP_TEMPLATE = json.loads((EVENTS / "http-api-v2.json").read_text(encoding="utf-8"))
# Variables a test run must not inherit from the shell or from another test.
HANDLER_VARS = ("IM_SECRET_SOURCE", "IM_SECRET_KEY", "IM_SDKAPPID", "IM_ADMIN", "DEAD_LETTER_ROUTES", "WORK_QUEUE",
                "IM_MAX_ATTEMPTS", "IM_MAX_RECEIVES", "IM_RATE_LIMIT", "IM_REGION", "AWS_LAMBDA_FUNCTION_NAME",
                "IM_SECRET_MAX_AGE", "TENCENTCLOUD_SSM_ENDPOINT", "IM_APPS")


def configure(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    """Set exactly ``env`` among the handler's variables and rebuild the process's runtime around it."""
    for name in HANDLER_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", **env}.items():
        monkeypatch.setenv(name, value)
    runtime.reset()


def sqs_record(body: str, receive_count: int = 1, message_id: str | None = None,
               arn: str = QUEUE_ARN, sent: int | None = None) -> dict[str, Any]:
    """One record of a Lambda SQS event, as the event source mapping delivers it (sent now, unless ``sent``)."""
    message_id = message_id or str(uuid.uuid4())
    sent = sent or sent_ms()
    return {
        "messageId": message_id,
        "receiptHandle": f"AQEB{message_id}{receive_count}==",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(sent),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": str(sent + 100),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "us-east-1",
    }


def sqs_record_from_received(message: Mapping[str, Any], arn: str) -> dict[str, Any]:
    """A Lambda record from a boto3 ``receive_message`` answer, receive count included."""
    attributes = message.get("Attributes", {})
    record = sqs_record(message["Body"], int(attributes["ApproximateReceiveCount"]), message["MessageId"], arn)
    record["receiptHandle"] = message["ReceiptHandle"]
    record["attributes"].update({k: v for k, v in attributes.items() if isinstance(v, str)})
    record["messageAttributes"] = {  # the Lambda shape: camelCase keys
        name: {"stringValue": value.get("StringValue"), "dataType": value.get("DataType")}
        for name, value in message.get("MessageAttributes", {}).items()}
    return record


def sqs_event(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def failed_ids(result: Any) -> list[str]:
    """The itemIdentifiers of an SQS answer, checking its shape on the way."""
    assert isinstance(result, dict) and set(result) == {"batchItemFailures"}, result
    return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]


def sns_wrap(message: str) -> str:
    """The SQS body SNS delivers for a notification carrying ``message`` (raw delivery off)."""
    return json.dumps({
        "Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": TOPIC_ARN, "Message": message,
        "Timestamp": "2026-06-01T08:00:00.000Z", "SignatureVersion": "1", "Signature": "EXAMPLE==",
    })


def http_event(path: str, body: str | None, method: str = "PATCH") -> dict[str, Any]:
    """An HTTP API (payload 2.0) event for ``method path`` with ``body`` as the raw text."""
    event: dict[str, Any] = copy.deepcopy(_HTTP_TEMPLATE)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    event["requestContext"]["timeEpoch"] = sent_ms()  # made now: its issue time (DESIGN "Order")
    event["pathParameters"] = {"taskId": path.rsplit("/", 1)[-1]}
    event["body"] = body
    return event


def ids_by_digest(count: int = 2, prefix: str = "sqs:") -> list[str]:
    """Message ids whose order keys, at one time, rise in the order given: the id decides a tie between two
    changes (DESIGN "Order"), and a test can then choose whether the queue's own order agrees with it."""
    from handler.order.key import Stamp

    return sorted((str(uuid.uuid4()) for _ in range(count)), key=lambda i: Stamp(0, prefix + i).key)


def fifo_record(body: str, sent: int, sequence: int, message_id: str | None = None, group: str = "g",
                receive_count: int = 1) -> dict[str, Any]:
    """One record of a FIFO queue's Lambda event: its group and SequenceNumber (SQS raises it within a group)."""
    record = sqs_record(body, receive_count, message_id, QUEUE_ARN + ".fifo", sent)
    record["attributes"].update({"MessageGroupId": group, "SequenceNumber": str(sequence),
                                 "MessageDeduplicationId": hashlib.sha256(body.encode()).hexdigest()})
    return record


def invoke_elsewhere(event: Any, tmp_path: Path) -> Any:
    """``timpush invoke`` in a process of its own: another instance of the fleet."""
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "timpush.cli", "invoke", str(path)], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)
