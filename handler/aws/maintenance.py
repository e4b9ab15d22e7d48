"""Lambda's maintenance job (a bare EventBridge ``Scheduled Event``): retryable dead letters go back to the work queue.

The job is ``handler.sources.maintenance``; here are its two SQS ends. It reads the queue that the ``retryable``
class routes to and sends the original body of each due record to ``WORK_QUEUE`` with the message attribute
``Redrives`` = n + 1 and the change's order key (``handler.deadletter.sqs.work_message``). The work queue's consumer
writes that count into the record if the body fails again, so a body that keeps failing stops coming back after
MAX_REDRIVES rounds. Both queues are called through a client whose timeouts bound each call (no retries inside a
call: the next run is the retry).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

from botocore.config import Config

from handler.im.codes import ErrorClass
from handler.observability import logger
from handler.runtime import Runtime
from handler.sources import maintenance
from handler.sources.maintenance import MAX_PER_RUN as MAX_PER_RUN  # re-exported: the tests read the bounds here
from handler.sources.maintenance import MAX_REDRIVES as MAX_REDRIVES
from handler.sources.maintenance import RECEIVE_WAIT, Due, Letter, QueueUnreachable, Summary

if TYPE_CHECKING:
    from handler.deadletter.sqs import Queue

VISIBILITY = 120  # seconds a message looked at stays hidden, so one run never sees it twice
CONNECT_TIMEOUT = 2.0
READ_SLACK = 3.0  # seconds an answer may take beyond the receive's long poll


def run(runtime: Runtime, deadline: float) -> Summary:
    """Redrive what is due; return and log ``{"redriven", "kept", "kept_at_limit"}`` (and ``"stopped"``, the cause,
    when a queue could not be reached). Without WORK_QUEUE, or when ``retryable`` does not route to an SQS queue,
    the job logs why and does nothing."""
    source = runtime.dead_letters.class_route(ErrorClass.RETRYABLE)
    target = runtime.settings.work_queue
    if not (target and target.startswith("sqs:")) or not source.startswith("sqs:"):
        logger.info("maintenance idle: needs WORK_QUEUE (sqs:URL) and retryable routed to an sqs: queue",
                    extra={"work_queue_set": bool(target), "retryable_route": source.split(":", 1)[0]})
        return {"redriven": 0, "kept": 0, "kept_at_limit": 0}
    from handler.deadletter.sqs import Queue  # boto3 only when there is a queue to maintain

    config = bounded_config(CONNECT_TIMEOUT, RECEIVE_WAIT + READ_SLACK)
    return maintenance.run(SqsLetters(Queue(source[4:], config)), WorkQueue(Queue(target[4:], config)), deadline)


@cache
def bounded_config(connect: float, read: float) -> Config:
    """A client whose every call ends within ``connect + read`` seconds: one attempt, no retries."""
    return Config(connect_timeout=connect, read_timeout=read, retries={"mode": "standard", "total_max_attempts": 1})


def _unreachable(exc: Exception, name: str) -> QueueUnreachable:
    return QueueUnreachable(name, getattr(exc, "cause", str(exc)))


class SqsLetters:
    """The dead-letter queue as the job reads it."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        self.name = queue.name
        self.call_time = CONNECT_TIMEOUT + RECEIVE_WAIT + READ_SLACK

    def receive(self, most: int) -> list[Letter]:
        from handler.deadletter.sqs import QueueError

        try:
            got = self._queue.receive(most, RECEIVE_WAIT, VISIBILITY)
        except QueueError as exc:
            raise _unreachable(exc, self.name) from None
        return [Letter(m.message_id, m.body, m.receipt, m.receive_count) for m in got]

    def delete(self, letters: Sequence[Letter]) -> int:
        from handler.deadletter.sqs import QueueError

        try:
            return self._queue.delete([letter.receipt for letter in letters])
        except QueueError as exc:
            raise _unreachable(exc, self.name) from None

    def release(self, letters: Sequence[Letter]) -> None:
        from handler.deadletter.sqs import QueueError

        try:
            self._queue.release([letter.receipt for letter in letters])
        except QueueError as exc:
            raise _unreachable(exc, self.name) from None


class WorkQueue:
    """The work queue: each due record's original body, ``Redrives`` = n + 1, its order key as attributes."""

    counts: tuple[str, ...] = ()
    batch = 10  # one SendMessageBatch call (SQS takes ten entries a call), bounded like every other call

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def redrive(self, due: Sequence[Due], deadline: float, summary: Summary) -> list[Letter]:
        from handler.deadletter.sqs import QueueError, work_message

        try:
            refused = self._queue.send([work_message(doc) for _, doc in due])
        except QueueError as exc:
            raise _unreachable(exc, self._queue.name) from None
        return [letter for i, (letter, _) in enumerate(due) if i not in refused]
