"""The maintenance job both platforms share (handler.sources.maintenance), on a clock the test moves: every queue
call it starts ends by the deadline, and a queue out of reach stops it with its counts, never "done"."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import pytest

from handler.deadletter.record import Source, record
from handler.im.codes import ErrorClass, Origin
from handler.observability import logger
from handler.outcome import Outcome, Status
from handler.sources import maintenance
from handler.sources.maintenance import Due, Letter, QueueUnreachable, Summary

CALL = 6.0  # seconds each fake queue call takes: its configured timeouts, all used


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def letter(n: int) -> Letter:
    raw = json.dumps({"TaskID": n, "Type": "All", "SchedAt": "2031-06-15 14:00:00"})
    outcome = Outcome(Status.FAILED, raw, json.loads(raw), -1, "failed", ErrorClass.RETRYABLE, Origin.TRANSPORT, 1)
    doc = {**record(outcome, Source("sqs", f"m{n}")), "issued_at": f"2030-06-01T08:00:{n % 60:02d}.000Z"}
    return Letter(f"m{n}", json.dumps(doc), f"r{n}", 1)


class Queue:
    """One message a receive; every call takes CALL seconds of the clock, or fails after that when ``down``."""

    name = "fake:dlq"
    call_time = CALL

    def __init__(self, clock: Clock, count: int, down: bool = False) -> None:
        self.clock = clock
        self.messages = [letter(n) for n in range(count)]
        self.down = down
        self.calls: list[tuple[str, float]] = []  # (call, when it ended)

    def _call(self, name: str) -> None:
        self.clock.now += CALL
        self.calls.append((name, self.clock.now))
        if self.down:
            raise QueueUnreachable(self.name, "no answer (read timed out)")

    def receive(self, most: int) -> list[Letter]:
        self._call("receive")
        return [self.messages.pop(0)] if self.messages else []

    def delete(self, letters: Sequence[Letter]) -> int:
        self._call("delete")
        return 0

    def release(self, letters: Sequence[Letter]) -> None:
        self._call("release")


class Target:
    counts: tuple[str, ...] = ()
    batch = 10

    def __init__(self) -> None:
        self.given: list[str] = []

    def redrive(self, due: Sequence[Due], deadline: float, summary: Summary) -> list[Letter]:
        self.given += [letter.id for letter, _ in due]
        return [letter for letter, _ in due]


@pytest.mark.parametrize("seconds", [5.0, 13.0, 40.0, 95.0, 400.0])
def test_every_queue_call_it_starts_ends_by_the_deadline(seconds: float) -> None:
    clock = Clock()
    deadline = clock.now + seconds
    queue = Queue(clock, count=30)
    summary = maintenance.run(queue, Target(), deadline, clock)
    assert all(ended <= deadline for _, ended in queue.calls), queue.calls
    assert "stopped" not in summary
    # and it did what fitted: a receive while it and the release after it fit (30 messages, then an empty answer)
    receives = sum(1 for name, _ in queue.calls if name == "receive")
    assert receives == min(30 + 1, max(0, int(seconds // CALL) - 1))


def test_a_queue_out_of_reach_stops_the_job_with_its_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", log)
    clock = Clock()
    queue = Queue(clock, count=3, down=True)
    deadline = clock.now + 300
    summary = maintenance.run(queue, Target(), deadline, clock)
    assert summary == {"redriven": 0, "kept": 0, "kept_at_limit": 0, "stopped": "fake:dlq: no answer (read timed out)"}
    assert queue.calls == [("receive", 506.0)]  # one call, and nothing after it: the next run is the retry
    lines = [json.loads(x) for x in log.getvalue().splitlines() if '"maintenance ' in x]
    assert [x["message"] for x in lines] == ["maintenance stopped: fake:dlq: no answer (read timed out)"]
    assert lines[0]["summary"] == {"redriven": 0, "kept": 0, "kept_at_limit": 0}


def test_due_records_go_oldest_change_first_and_what_the_target_took_is_deleted() -> None:
    clock = Clock()
    queue = Queue(clock, count=0)
    queue.messages = [letter(3), letter(1), letter(2)]
    target = Target()
    summary: dict[str, Any] = maintenance.run(queue, target, clock.now + 300, clock)
    assert target.given == ["m1", "m2", "m3"]
    assert summary == {"redriven": 3, "kept": 0, "kept_at_limit": 0}
    assert [name for name, _ in queue.calls] == ["receive"] * 4 + ["delete"]
