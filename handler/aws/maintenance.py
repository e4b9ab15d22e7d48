"""The scheduled maintenance job: retryable dead letters go back to the work queue, within bounds.

A bare EventBridge ``Scheduled Event`` runs it. It reads the SQS queue that the ``retryable`` class
routes to, sends the original body of each ``retryable`` record to ``WORK_QUEUE`` with the message
attribute ``Redrives`` = n + 1 and deletes it from the dead-letter queue. The work queue's consumer
writes that count into the record if the body fails again (``handler.deadletter.record.redrive_count``), so
a body that keeps failing stops coming back after MAX_REDRIVES rounds and stays for an operator.
At most MAX_PER_RUN messages are looked at per run; everything not redriven is left as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from handler.deadletter.record import DeadLetterError, parse_record, redrives_of
from handler.im.codes import ErrorClass
from handler.observability import logger
from handler.runtime import Runtime
from handler.sources.maintenance import MARGIN, MAX_PER_RUN, MAX_REDRIVES, RECEIVE_WAIT, report

if TYPE_CHECKING:
    from handler.deadletter.sqs import Queue, Received

VISIBILITY = 120  # seconds a message looked at stays hidden, so one run never sees it twice


def run(runtime: Runtime, deadline: float) -> dict[str, int]:
    """Redrive what is due; return and log ``{"redriven", "kept", "kept_at_limit"}``.

    ``deadline`` is on the ``time.monotonic`` scale. Without WORK_QUEUE, or when ``retryable``
    does not route to an SQS queue, the job logs why and does nothing.
    """
    summary = {"redriven": 0, "kept": 0, "kept_at_limit": 0}
    source = runtime.dead_letters.class_route(ErrorClass.RETRYABLE)
    target = runtime.settings.work_queue
    if not (target and target.startswith("sqs:")) or not source.startswith("sqs:"):
        logger.info("maintenance idle: needs WORK_QUEUE (sqs:URL) and retryable routed to an sqs: queue",
                    extra={"work_queue_set": bool(target), "retryable_route": source.split(":", 1)[0]})
        return summary
    from handler.deadletter.sqs import Queue  # boto3 only when there is a queue to maintain

    job = _Job(Queue(source[4:]), Queue(target[4:]), deadline, summary)
    try:
        job.run()
    finally:
        job.release()
        report(summary, source)
    return summary


@dataclass
class _Job:
    dlq: Queue
    work: Queue
    deadline: float
    summary: dict[str, int]
    left: list[str] = field(default_factory=list)  # receipts to make visible again
    seen: set[str] = field(default_factory=set)

    def run(self) -> None:
        while len(self.seen) < MAX_PER_RUN and time.monotonic() < self.deadline - MARGIN:
            batch = self.dlq.receive(MAX_PER_RUN - len(self.seen), RECEIVE_WAIT, VISIBILITY)
            fresh = [m for m in batch if m.message_id not in self.seen]
            self.left += [m.receipt for m in batch if m.message_id in self.seen]
            if not fresh:
                return
            self.seen.update(m.message_id for m in fresh)
            due = [(m, doc) for m in fresh if (doc := self._due(m)) is not None]
            if due:
                self._redrive(due)

    def _due(self, message: Received) -> dict[str, Any] | None:
        """The record when it is to be redriven; otherwise count it and leave the message."""
        doc = parse_record(message.body)
        if doc is None or doc["error"].get("class") != ErrorClass.RETRYABLE:
            self._leave(message, "kept")
            return None
        count = redrives_of(doc)
        if count < MAX_REDRIVES:
            return doc
        self._leave(message, "kept_at_limit")
        if message.receive_count <= 1:  # the first run that sees it says so; later runs stay quiet
            from handler.deadletter.sqs import task_id_of

            logger.warning("dead letter reached the redrive limit; left for an operator (timpush redrive)",
                           extra={"task_id": task_id_of(doc), "error_code": doc["error"]["code"],
                                  "redrives": count, "message_id": message.message_id})
        return None

    def _redrive(self, due: list[tuple[Received, dict[str, Any]]]) -> None:
        from handler.deadletter.sqs import work_message

        try:
            refused = self.work.send([work_message(doc) for _, doc in due])
        except DeadLetterError:
            for message, _ in due:
                self._leave(message, "kept")
            raise
        sent = [m.receipt for i, (m, _) in enumerate(due) if i not in refused]
        for i in sorted(refused):
            self._leave(due[i][0], "kept")
        self.summary["redriven"] += len(sent)
        if undeleted := self.dlq.delete(sent):
            logger.warning("redriven dead letters not deleted; they will be redriven again",
                           extra={"count": undeleted})

    def _leave(self, message: Received, why: str) -> None:
        self.summary[why] += 1
        self.left.append(message.receipt)

    def release(self) -> None:
        if not self.left:
            return
        try:
            self.dlq.release(self.left)
        except DeadLetterError:
            logger.warning("could not make dead letters visible again; they reappear after the timeout",
                           extra={"count": len(self.left), "visibility_timeout": VISIBILITY})
