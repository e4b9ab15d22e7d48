"""The maintenance job over real HTTP (moto server): bounded per run, bounded rounds, idle when unset."""

from __future__ import annotations

import io
import json
import time

import pytest

from handler import runtime
from handler.aws import maintenance
from handler.aws.entry import lambda_handler
from handler.deadletter.record import DeadLetterError, Source, record, redrive_count
from handler.im.codes import ErrorClass, Origin
from handler.observability import logger
from handler.outcome import Outcome, Status
from tests.fakes.moto_sqs import MotoSqs
from timpush.context import LocalContext

pytestmark = pytest.mark.integration

SCHEDULED = {"version": "0", "id": "evt-1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2030-06-01T08:00:00Z", "region": "us-east-1",
             "resources": ["arn:aws:events:us-east-1:123456789012:rule/maintenance"], "detail": {}}


@pytest.fixture
def queues(sqs_env: MotoSqs, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """(dead-letter queue of class retryable, work queue), configured in the environment."""
    dlq, work = sqs_env.create_queue("retryable-dlq"), sqs_env.create_queue("work")
    monkeypatch.setenv("DEAD_LETTER", "file:other.jsonl")
    monkeypatch.setenv("DEAD_LETTER_ROUTES", json.dumps({"retryable": f"sqs:{dlq}"}))
    monkeypatch.setenv("WORK_QUEUE", f"sqs:{work}")
    return dlq, work


def _failure(task_id: int, code: int = -1, error_class: ErrorClass = ErrorClass.RETRYABLE,
             raw: str | None = None, receive: tuple[str, int] = ("m", 5), redrives: int = 0) -> dict[str, object]:
    body = raw or json.dumps({"TaskID": task_id, "Type": "All", "SchedAt": "2030-06-15 14:00:00"})
    outcome = Outcome(Status.FAILED, body, json.loads(body), code, "failed", error_class, Origin.TRANSPORT, 4)
    return record(outcome, Source("sqs", *receive), redrives=redrives)


def _dead_letter(*docs: dict[str, object]) -> None:
    """Through the configured routes, as the handler does."""
    runtime.runtime().dead_letters.send(list(docs))


def _run(seconds: float = 20.0) -> dict[str, int]:
    return maintenance.run(runtime.runtime(), time.monotonic() + seconds)


def _fail_again(server: MotoSqs, work: str) -> int:
    """The work queue's consumer failing every message again, carrying the redrive count forward."""
    messages = server.drain(work)
    _dead_letter(*[
        _failure(0, raw=m["Body"], receive=(m["MessageId"], 5), redrives=redrive_count(m["MessageAttributes"]))
        for m in messages
    ])
    return len(messages)


def test_redrives_retryable_records_to_the_work_queue_within_the_bound(
    server: MotoSqs, queues: tuple[str, str]
) -> None:
    dlq, work = queues
    # Given more retryable dead letters than one run may take, and some of another class in the same queue
    _dead_letter(*[_failure(n, receive=(f"m{n}", 5)) for n in range(1, 61)])
    server.client.send_message(QueueUrl=dlq, MessageBody=json.dumps(_failure(900, 90106, ErrorClass.TOO_LATE)))
    server.client.send_message(QueueUrl=dlq, MessageBody="not a record")
    # When the job runs once
    first = _run()
    # Then it looked at MAX_PER_RUN messages: the retryable ones went to the work queue, the others stay
    assert first["redriven"] + first["kept"] == maintenance.MAX_PER_RUN
    assert first["kept_at_limit"] == 0
    sent = server.drain(work)
    assert len(sent) == first["redriven"]
    for message in sent:
        assert message["MessageAttributes"]["Redrives"] == {"StringValue": "1", "DataType": "Number"}
        assert set(json.loads(message["Body"])) == {"TaskID", "Type", "SchedAt"}  # the original raw body
    assert server.count(dlq) == 62 - first["redriven"]
    # And the next runs take the rest; what is not retryable is left, visible again
    second, third = _run(), _run()
    assert first["redriven"] + second["redriven"] + third["redriven"] == 60
    assert third["kept"] == 2
    assert server.count(dlq) == 2
    assert len(server.drain(dlq)) == 2  # visible at once, not hidden until a timeout


def test_a_record_that_keeps_failing_stops_after_max_redrives(server: MotoSqs, queues: tuple[str, str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", log)
    dlq, work = queues
    _dead_letter(_failure(4242))
    # When the job and a failing consumer take turns
    for round_ in range(1, maintenance.MAX_REDRIVES + 1):
        assert _run() == {"redriven": 1, "kept": 0, "kept_at_limit": 0}, round_
        assert _fail_again(server, work) == 1
    # Then the record carries the count, and the job leaves it from then on, saying so once
    [message] = server.drain(dlq)
    doc = json.loads(message["Body"])
    assert doc["redrives"] == maintenance.MAX_REDRIVES
    assert json.loads(doc["raw"])["TaskID"] == 4242
    server.client.send_message(QueueUrl=dlq, MessageBody=message["Body"])
    assert _run() == {"redriven": 0, "kept": 0, "kept_at_limit": 1}
    assert _run() == {"redriven": 0, "kept": 0, "kept_at_limit": 1}
    assert server.count(work) == 0 and server.count(dlq) == 1
    warnings = [line for line in log.getvalue().splitlines() if "redrive limit" in line]
    assert len(warnings) == 1 and '"task_id":"4242"' in warnings[0]


def test_scheduled_event_runs_the_job(server: MotoSqs, queues: tuple[str, str]) -> None:
    dlq, work = queues
    _dead_letter(_failure(7))
    result = lambda_handler(SCHEDULED, LocalContext(timeout_seconds=30))
    assert result == {"redriven": 1, "kept": 0, "kept_at_limit": 0}
    assert server.count(work) == 1 and server.count(dlq) == 0


def test_idle_without_work_queue(server: MotoSqs, queues: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    dlq, _ = queues
    _dead_letter(_failure(8))
    monkeypatch.delenv("WORK_QUEUE")
    runtime.reset()
    assert _run() == {"redriven": 0, "kept": 0, "kept_at_limit": 0}
    assert server.count(dlq) == 1


def test_idle_when_retryable_goes_to_a_file(queues: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEAD_LETTER_ROUTES", json.dumps({"retryable": "file:retry.jsonl"}))
    runtime.reset()
    assert _run() == {"redriven": 0, "kept": 0, "kept_at_limit": 0}


def test_stops_at_the_deadline(server: MotoSqs, queues: tuple[str, str]) -> None:
    dlq, _ = queues
    _dead_letter(_failure(9))
    assert _run(seconds=0.5) == {"redriven": 0, "kept": 0, "kept_at_limit": 0}
    assert server.count(dlq) == 1


def test_work_queue_down_keeps_the_dead_letters(server: MotoSqs, queues: tuple[str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    dlq, _ = queues
    _dead_letter(_failure(10), _failure(11))
    monkeypatch.setenv("WORK_QUEUE", f"sqs:{server.endpoint}/123456789012/no-such-queue")
    runtime.reset()
    with pytest.raises(DeadLetterError, match="no-such-queue"):
        _run()
    assert len(server.drain(dlq)) == 2  # still there, and visible again
