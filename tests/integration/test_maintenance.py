"""The maintenance job over real HTTP (moto server): bounded per run, bounded rounds, idle when unset."""

from __future__ import annotations

import io
import json
import time

import pytest

from handler import runtime
from handler.aws import maintenance
from handler.aws.entry import lambda_handler
from handler.deadletter import sqs as deadletter_sqs
from handler.deadletter.record import Source, record, redrive_count
from handler.im.codes import ErrorClass, Origin
from handler.observability import logger
from handler.outcome import Outcome, Status
from tests.fakes.moto_sqs import MotoSqs, free_port
from tests.fakes.silent_server import SilentServer
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
    assert len(warnings) == 1 and '"task_id":4242' in warnings[0]


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
    summary = _run()
    assert summary == {"redriven": 0, "kept": 2, "kept_at_limit": 0,
                       "stopped": f"sqs:{server.endpoint}/123456789012/no-such-queue: no such queue"}
    assert len(server.drain(dlq)) == 2  # still there, and visible again


# --- a queue that cannot be reached -------------------------------------------------------------------------------


def _unreachable_run(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, object], list[str], int]:
    """The job through the real entry with both queues at ``endpoint``: (its answer, its log lines, SQS attempts)."""
    log = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", log)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", endpoint)
    monkeypatch.setenv("DEAD_LETTER_ROUTES", json.dumps({"retryable": f"sqs:{endpoint}/123456789012/dlq"}))
    monkeypatch.setenv("WORK_QUEUE", f"sqs:{endpoint}/123456789012/work")
    runtime.reset()
    attempts: list[str] = []
    config = maintenance.bounded_config(maintenance.CONNECT_TIMEOUT, maintenance.RECEIVE_WAIT + maintenance.READ_SLACK)
    client = deadletter_sqs.client_for(f"{endpoint}/123456789012/dlq", config)
    client.meta.events.register("before-send.sqs", lambda **kwargs: attempts.append(kwargs["request"].url))
    result = lambda_handler(SCHEDULED, LocalContext(timeout_seconds=30))
    return result, log.getvalue().splitlines(), len(attempts)


def _stopped(lines: list[str]) -> dict[str, object]:
    [line] = [json.loads(x) for x in lines if '"maintenance ' in x]  # one line for the run, and it is not "done"
    assert line["message"].startswith("maintenance stopped: ") and line["level"] == "WARNING"
    return line


def test_a_refused_queue_stops_the_job_at_its_first_call(sqs_env: MotoSqs, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an SQS endpoint nothing listens on
    endpoint = f"http://127.0.0.1:{free_port()}"
    # When the maintenance schedule fires
    result, lines, attempts = _unreachable_run(endpoint, monkeypatch)
    # Then the job answers (no traceback) after one attempt of one call, saying why and with its counts
    cause = "connection refused (or the address cannot be reached)"
    assert result == {"redriven": 0, "kept": 0, "kept_at_limit": 0,
                      "stopped": f"sqs:{endpoint}/123456789012/dlq: {cause}"}
    assert attempts == 1  # no retry inside the call, no second call: the next run is the retry
    line = _stopped(lines)
    assert line["cause"] == result["stopped"] and line["summary"] == {"redriven": 0, "kept": 0, "kept_at_limit": 0}


def test_a_queue_that_never_answers_stops_the_job_within_one_calls_timeouts(
        sqs_env: MotoSqs, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an SQS endpoint that accepts and never answers, and a shorter read allowance than in production
    monkeypatch.setattr(maintenance, "READ_SLACK", 0.3)
    with SilentServer() as silent:
        # When the maintenance schedule fires
        result, lines, attempts = _unreachable_run(silent.url, monkeypatch)
        # Then one call was made, once, and it ended by its own read timeout: the run stopped, saying so
        assert silent.accepted == 1 and attempts == 1
    assert result["stopped"] == f"sqs:{silent.url}/123456789012/dlq: no answer (read timed out)"
    assert _stopped(lines)["summary"] == {"redriven": 0, "kept": 0, "kept_at_limit": 0}


def test_each_queue_call_is_bounded_by_its_configured_timeouts() -> None:
    # The time bound of one call, which the job keeps free before the deadline for each call it starts
    config = maintenance.bounded_config(maintenance.CONNECT_TIMEOUT, maintenance.RECEIVE_WAIT + maintenance.READ_SLACK)
    assert (config.connect_timeout, config.read_timeout, config.retries) == (
        maintenance.CONNECT_TIMEOUT, maintenance.RECEIVE_WAIT + maintenance.READ_SLACK,
        {"mode": "standard", "total_max_attempts": 1})
    queue = maintenance.SqsLetters(deadletter_sqs.Queue("http://127.0.0.1:9/123456789012/dlq", config))
    assert queue.call_time == config.connect_timeout + config.read_timeout
