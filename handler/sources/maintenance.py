"""The maintenance job both platforms run: retryable dead letters come back, within bounds (DESIGN "Entry points").

It reads the queue that the ``retryable`` class routes to through a small interface (``DeadLetterQueue``: receive,
delete, release), takes up to MAX_PER_RUN messages, keeps what is not a ``retryable`` record or is at
MAX_REDRIVES (left for an operator), and hands the rest, oldest change first (the whole order key, from
``handler.order.travel``), to the platform's ``Target``: Lambda sends each body back to the SQS work queue
(``handler.aws.maintenance``), SCF applies it through the modifier (``handler.scf.maintenance``). What the target
took is deleted; everything else is released (or, where the queue cannot release, comes back after its
visibility timeout).

Every queue call is bounded by its configured timeouts (``call_time``) and is started only when it fits before the
deadline, one call's time being kept for the release. A queue that cannot be reached stops the run at once: one
WARNING ``maintenance stopped: <cause>`` with the counts so far, never "done" and never a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from handler.compat import UTC
from handler.deadletter.record import parse_record, redrives_of
from handler.im.codes import ErrorClass
from handler.observability import logger, metrics
from handler.order.travel import issue_of_record

MAX_PER_RUN = 50  # messages received (redriven or not) per run
MAX_REDRIVES = 3  # rounds through the work queue before a record is left for an operator
RECEIVE_WAIT = 1  # seconds of long polling: a short poll may miss messages on a standard queue

UNDATED = datetime(1970, 1, 1, tzinfo=UTC)  # where a record written before ``issued_at`` travelled sorts: first
Summary = dict[str, Any]


class QueueUnreachable(Exception):
    """A queue call failed: ``cause`` says why in words (connection refused, no answer, no such queue, ...)."""

    def __init__(self, queue: str, cause: str) -> None:
        super().__init__(f"{queue}: {cause}")
        self.queue = queue
        self.cause = cause


@dataclass(frozen=True)
class Letter:
    """One received message of a dead-letter queue."""

    id: str
    body: str
    receipt: str
    receive_count: int  # 1 on its first receipt: the first run that sees a record at its limit says so


class DeadLetterQueue(Protocol):
    """The queue's calls; each raises QueueUnreachable and takes at most ``call_time`` seconds."""

    name: str
    call_time: float

    def receive(self, most: int) -> list[Letter]:
        """Up to ``most`` visible messages, each hidden from now on; [] when there is none."""

    def delete(self, letters: Sequence[Letter]) -> int:
        """Delete the letters; how many the queue refused."""

    def release(self, letters: Sequence[Letter]) -> None:
        """Make the letters visible again at once (or let them come back after their visibility timeout)."""


Due = tuple[Letter, dict[str, Any]]  # a letter and its record, to be redriven


class Target(Protocol):
    """Where due records go; ``counts`` names the summary's own counts, ``batch`` how many go at once."""

    counts: tuple[str, ...]
    batch: int

    def redrive(self, due: Sequence[Due], deadline: float, summary: Summary) -> list[Letter]:
        """Redrive ``due``; the letters it took (to be deleted). Raises QueueUnreachable to stop the run."""


def run(queue: DeadLetterQueue, target: Target, deadline: float,
        clock: Callable[[], float] = time.monotonic) -> Summary:
    """One run on ``queue`` until ``deadline`` (on the ``clock`` scale); the summary it logs and returns."""
    job = _Job(queue, target, deadline, clock, {"redriven": 0, **dict.fromkeys(target.counts, 0),
                                                "kept": 0, "kept_at_limit": 0})
    try:
        job.run()
    except QueueUnreachable as exc:
        job.summary["stopped"] = str(exc)  # the queue, and why
    job.settle()
    report(job.summary, queue.name)
    return job.summary


@dataclass
class _Job:
    queue: DeadLetterQueue
    target: Target
    deadline: float
    clock: Callable[[], float]
    summary: Summary
    left: list[Letter] = field(default_factory=list)  # to make visible again
    seen: set[str] = field(default_factory=set)

    def fits(self, calls: int = 1) -> bool:
        """Whether ``calls`` queue calls, and the release after them, end before the deadline."""
        return self.clock() + (calls + 1) * self.queue.call_time <= self.deadline

    def run(self) -> None:
        due = [(letter, doc) for letter in self._receive() if (doc := self._due(letter)) is not None]
        due.sort(key=lambda pair: issue_of_record(pair[1], UNDATED).stamp().key)  # oldest change first
        for start in range(0, len(due), self.target.batch):
            chunk = due[start:start + self.target.batch]
            if not self.fits(calls=2):  # the redrive and the delete; the rest stay for the next run
                self._leave([letter for letter, _ in due[start:]], "kept")
                return
            self._redrive(chunk)

    def _receive(self) -> list[Letter]:
        """Up to MAX_PER_RUN fresh messages; stops at an empty queue, one seen again, or the deadline."""
        got: list[Letter] = []
        while len(got) < MAX_PER_RUN and self.fits():
            batch = self.queue.receive(MAX_PER_RUN - len(got))
            fresh = [letter for letter in batch if letter.id not in self.seen]
            self.left += [letter for letter in batch if letter.id in self.seen]
            if not fresh:
                break
            self.seen.update(letter.id for letter in fresh)
            got += fresh
        return got

    def _due(self, letter: Letter) -> dict[str, Any] | None:
        """The record when it is to be redriven; otherwise count it and leave the message."""
        doc = parse_record(letter.body)
        if doc is None or doc["error"].get("class") != ErrorClass.RETRYABLE:
            self._leave([letter], "kept")
            return None
        if redrives_of(doc) < MAX_REDRIVES:
            return doc
        self._leave([letter], "kept_at_limit")
        if letter.receive_count <= 1:  # the first run that sees it says so; later runs stay quiet
            request = doc.get("request")
            logger.warning("dead letter reached the redrive limit; left for an operator (timpush redrive)",
                           extra={"task_id": request.get("TaskID") if isinstance(request, dict) else None,
                                  "error_code": doc["error"]["code"], "redrives": redrives_of(doc),
                                  "message_id": letter.id})
        return None

    def _redrive(self, chunk: list[Due]) -> None:
        try:
            # the target's work ends in time for the delete and the release after it
            taken = self.target.redrive(chunk, self.deadline - 2 * self.queue.call_time, self.summary)
        except BaseException:
            self._leave([letter for letter, _ in chunk], "kept")
            raise
        ids = {letter.id for letter in taken}
        self._leave([letter for letter, _ in chunk if letter.id not in ids], "kept")
        self.summary["redriven"] += len(taken)
        if taken and (undeleted := self.queue.delete(taken)):
            logger.warning("redriven dead letters not deleted; they come back and are redriven again (an equal "
                           "change is not applied twice)", extra={"count": undeleted})

    def _leave(self, letters: list[Letter], why: str) -> None:
        self.summary[why] += len(letters)
        self.left += letters

    def settle(self) -> None:
        """Make what was left visible again, when there is time for the call."""
        if not self.left:
            return
        try:
            if self.clock() + self.queue.call_time > self.deadline:
                raise QueueUnreachable(self.queue.name, "no time left to release them")
            self.queue.release(self.left)
        except QueueUnreachable as exc:
            logger.warning("could not make dead letters visible again; they reappear after their visibility "
                           "timeout", extra={"count": len(self.left), "reason": exc.cause})


def report(summary: Summary, dead_letter_queue: str) -> None:
    """The run's log line and metrics: "done", or "stopped: <cause>" when its queue could not be reached."""
    counts = {name: value for name, value in summary.items() if name != "stopped"}
    if "stopped" in summary:
        logger.warning(f"maintenance stopped: {summary['stopped']}",
                       extra={"summary": counts, "cause": summary["stopped"], "dead_letter_queue": dead_letter_queue})
        metrics.add_metric(name="MaintenanceStopped", unit=MetricUnit.Count, value=1)
    else:
        logger.info("maintenance done", extra={"summary": counts, "dead_letter_queue": dead_letter_queue})
    metrics.add_metric(name="DeadLettersRedriven", unit=MetricUnit.Count, value=summary["redriven"])
    # "kept_at_limit": left in the dead-letter queue for an operator (never dropped)
    metrics.add_metric(name="DeadLettersAtRedriveLimit", unit=MetricUnit.Count, value=summary["kept_at_limit"])
