"""SQS dead-letter sinks over real HTTP (moto server): routes, attributes, FIFO, batching, a sink down."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handler.aws.entry import lambda_handler
from handler.deadletter import DeadLetters
from handler.deadletter import sqs as deadletter_sqs
from handler.deadletter.record import DeadLetterError, Source, record
from handler.im.codes import ErrorClass, Origin
from handler.observability import logger
from handler.outcome import Outcome, Status
from tests.fakes.moto_sqs import MotoSqs, free_port
from timpush.context import LocalContext

pytestmark = pytest.mark.integration

PAST = "2001-01-01 00:00:00"  # refused locally with 90110 (too_late): no IM call needed
HANDLER_VARS = ("DEAD_LETTER", "DEAD_LETTER_ROUTES", "WORK_QUEUE", "IM_SECRET_SOURCE", "AWS_ENDPOINT_URL_SQS",
                "AWS_LAMBDA_FUNCTION_NAME")


@pytest.fixture
def aws(sqs_env: MotoSqs, monkeypatch: pytest.MonkeyPatch) -> MotoSqs:
    monkeypatch.setenv("IM_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens: -1 if called
    monkeypatch.setenv("IM_MAX_ATTEMPTS", "1")
    return sqs_env


def _invoke(payload: Any, request_id: str = "req-1") -> Any:
    return lambda_handler(payload, LocalContext(aws_request_id=request_id, timeout_seconds=30))


def _attributes(message: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {k: (v["DataType"], v["StringValue"]) for k, v in message.get("MessageAttributes", {}).items()}


def test_routes_by_class_and_by_code_with_attributes(aws: MotoSqs, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given too_late routed by class, 90104 by code (beating its class route) and a default queue
    late, bad, default = (aws.create_queue(n) for n in ("late", "bad", "default"))
    monkeypatch.setenv("DEAD_LETTER", f"sqs:{default}")
    monkeypatch.setenv("DEAD_LETTER_ROUTES", json.dumps(
        {"too_late": f"sqs:{late}", "90104": f"sqs:{bad}", "invalid": "file:invalid.jsonl"}))
    past = {"TaskID": 111, "Type": "All", "SchedAt": PAST}
    invalid = {"TaskID": 222, "Type": "Everyone", "SchedAt": "2030-06-15 14:00:00"}
    unreachable = {"TaskID": 333, "Type": "All", "SchedAt": "2099-06-15 14:00:00"}
    # When a direct payload carries one of each
    result = _invoke([past, invalid, unreachable])
    # Then each failure is in the queue its code chooses, with the full record and its attributes
    assert result["dead_lettered"] == 3
    [late_msg], [bad_msg], [default_msg] = aws.drain(late), aws.drain(bad), aws.drain(default)
    doc = json.loads(late_msg["Body"])
    assert _attributes(late_msg) == {"ErrorCode": ("Number", "90110"), "ErrorClass": ("String", "too_late"),
                                     "TaskID": ("String", "111"), "Source": ("String", "direct"),
                                     "IssuedAt": ("String", doc["issued_at"])}
    assert _attributes(bad_msg)["ErrorCode"] == ("Number", "90104")
    assert _attributes(bad_msg)["ErrorClass"] == ("String", "invalid")
    assert _attributes(default_msg)["ErrorCode"] == ("Number", "-1")
    assert _attributes(default_msg)["ErrorClass"] == ("String", "retryable")
    assert set(doc) == {"kind", "version", "error", "request", "raw", "source", "attempts", "failed_at",
                        "issued_at", "issued_by"}
    # the rest of each change's order key: the invocation's id, and the entry's position in the payload
    assert doc["issued_by"] == "direct:req-1" and "issued_pos" not in doc
    assert json.loads(bad_msg["Body"])["issued_pos"] == 1 and json.loads(default_msg["Body"])["issued_pos"] == 2
    assert abs(datetime.fromisoformat(doc["issued_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert json.loads(doc["raw"]) == past
    assert doc["source"] == {"kind": "direct", "id": "req-1"}
    assert (doc["error"]["code"], doc["error"]["origin"]) == (90110, "local")
    assert not Path("invalid.jsonl").exists()  # the code route won over the class route


def test_fifo_queue_groups_by_task_and_deduplicates_a_retried_invocation(
    aws: MotoSqs, monkeypatch: pytest.MonkeyPatch
) -> None:
    dlq = aws.create_queue("dlq.fifo")
    monkeypatch.setenv("DEAD_LETTER", f"sqs:{dlq}")
    payload = [{"TaskID": 41, "Type": "All", "SchedAt": PAST}, {"TaskID": 42, "Type": "All", "SchedAt": PAST}]
    _invoke(payload, "req-fifo")
    _invoke(payload, "req-fifo")  # Lambda's own retry of the same invocation: same request id
    messages = aws.drain(dlq)
    assert sorted(m["Attributes"]["MessageGroupId"] for m in messages) == ["41", "42"]
    for message in messages:
        doc = json.loads(message["Body"])
        expected = deadletter_sqs.fingerprint(doc["raw"], 90110, "req-fifo", 0)
        assert message["Attributes"]["MessageDeduplicationId"] == expected


def test_fifo_record_without_task_id_goes_to_group_unknown(aws: MotoSqs, monkeypatch: pytest.MonkeyPatch) -> None:
    dlq = aws.create_queue("nojson.fifo")
    monkeypatch.setenv("DEAD_LETTER", f"sqs:{dlq}")
    _invoke("this is not JSON")
    [message] = aws.drain(dlq)
    assert message["Attributes"]["MessageGroupId"] == "unknown"
    assert "TaskID" not in _attributes(message)
    assert json.loads(message["Body"])["raw"] == "this is not JSON"


def test_more_than_ten_records_are_sent_in_batches(aws: MotoSqs, monkeypatch: pytest.MonkeyPatch) -> None:
    dlq = aws.create_queue("many")
    monkeypatch.setenv("DEAD_LETTER", f"sqs:{dlq}")
    result = _invoke({"modifications": [{"TaskID": n, "Type": "All", "SchedAt": PAST} for n in range(1, 24)]})
    assert result["dead_lettered"] == 23
    bodies = [json.loads(m["Body"]) for m in aws.drain(dlq)]
    assert sorted(b["request"]["TaskID"] for b in bodies) == list(range(1, 24))


def test_routes_send_to_two_queues_in_one_call(aws: MotoSqs) -> None:
    late, retry = aws.create_queue("late2"), aws.create_queue("retry2")
    routes = DeadLetters(f"sqs:{retry}", {"too_late": f"sqs:{late}"})
    docs = [record(Outcome(Status.FAILED, f'{{"TaskID": {n}}}', {"TaskID": n}, code, "x", cls, Origin.REMOTE),
                   Source("sqs", f"m{n}", 1))
            for n, (code, cls) in enumerate([(90106, ErrorClass.TOO_LATE), (70500, ErrorClass.RETRYABLE)] * 12)]
    routes.send(docs)
    assert aws.count(late) == 12 and aws.count(retry) == 12


def test_sink_down_fails_the_invocation_and_logs_the_record(aws: MotoSqs, monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", log)
    # Given the dead-letter queue's endpoint refuses connections
    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", down)
    monkeypatch.setenv("DEAD_LETTER", f"sqs:{down}/123456789012/dlq")
    # When a direct payload fails
    with pytest.raises(DeadLetterError) as caught:
        _invoke({"TaskID": 777001, "Type": "All", "SchedAt": PAST})
    # Then the invocation raises (Lambda keeps the payload), naming the queue but not the body
    assert f"sqs:{down}/123456789012/dlq" in str(caught.value)
    assert "777001" not in str(caught.value)
    # and the log carries the whole record, so nothing is lost even before Lambda retries
    logged = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    failing = [entry for entry in logged if entry.get("records")]
    assert failing and failing[0]["records"][0]["request"]["TaskID"] == 777001


def test_missing_queue_is_a_dead_letter_error(aws: MotoSqs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEAD_LETTER", f"sqs:{aws.endpoint}/123456789012/never-created")
    with pytest.raises(DeadLetterError, match="never-created"):
        _invoke({"TaskID": 5, "Type": "All", "SchedAt": PAST})


def test_sink_down_keeps_a_queue_message_in_its_queue(aws: MotoSqs, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a queue message that fails permanently, and a dead-letter queue that does not exist
    monkeypatch.setenv("DEAD_LETTER", f"sqs:{aws.endpoint}/123456789012/never-created")
    sample = json.loads((Path(__file__).resolve().parents[2] / "events" / "sqs-standard.json").read_text())
    record = sample["Records"][0]
    record["body"] = json.dumps({"TaskID": 5, "Type": "All", "SchedAt": PAST})
    # When the batch is handled
    result = _invoke({"Records": [record]})
    # Then the message is reported failed, so SQS keeps it, rather than acknowledged and lost
    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
