"""SCF's maintenance job (a Timer whose ``Message`` is ``maintenance``): retryable dead letters in the ``tdmq-cmq:``
queue are applied again, within bounds.

The job is ``handler.sources.maintenance``; here are its TDMQ for CMQ queue (the data-flow API) and its target.
SCF has no work queue to send a body back to, so the target applies it through the modifier itself, as
``timpush redrive --to direct`` does, with the change's whole order key (``handler.order.travel``): an older
change never undoes a newer one, and a tie of one millisecond ends as it did the first time. A new failure is
written as a dead letter with ``redrives`` = n + 1, and the original is deleted only then. CMQ cannot make a
message visible again before its visibility timeout: what is left comes back by itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import datetime

from handler.compat import UTC
from handler.deadletter.cmq import CONNECT_TIMEOUT, CmqError, CmqQueue
from handler.deadletter.record import DeadLetterError, Source, parse_tdmq_target, redrives_of
from handler.im.codes import ErrorClass
from handler.model import split_payload
from handler.observability import logger
from handler.order.travel import issue_of_record
from handler.runtime import Runtime
from handler.sources import direct, maintenance
from handler.sources.maintenance import RECEIVE_WAIT, Due, Letter, QueueUnreachable, Summary

SCHEME = "tdmq-cmq:"
READ_SLACK = 3.0  # seconds an answer may take beyond the receive's long poll


def run(runtime: Runtime, deadline: float) -> Summary:
    """Apply again what is due; return and log ``{"redriven", "failed_again", "kept", "kept_at_limit"}`` (and
    ``"stopped"``, the cause, when the queue could not be reached)."""
    spec = runtime.dead_letters.class_route(ErrorClass.RETRYABLE)
    if not spec.startswith(SCHEME):
        logger.info("maintenance idle: retryable dead letters are not routed to a tdmq-cmq: queue",
                    extra={"retryable_route": spec.split(":", 1)[0]})
        return {"redriven": 0, "failed_again": 0, "kept": 0, "kept_at_limit": 0}
    region, name = parse_tdmq_target(spec[len(SCHEME):])
    return maintenance.run(CmqLetters(CmqQueue(region, name, os.environ), spec), ApplyNow(runtime, spec), deadline)


class CmqLetters:
    """The dead-letter queue as the job reads it: one message a receive; each call ends within ``call_time``."""

    call_time = CONNECT_TIMEOUT + RECEIVE_WAIT + READ_SLACK

    def __init__(self, queue: CmqQueue, name: str) -> None:
        self._queue = queue
        self.name = name

    def receive(self, most: int) -> list[Letter]:
        try:  # throttled answers are waited out within the call's time; a queue out of reach ends it
            got = self._queue.receive(RECEIVE_WAIT, time.monotonic() + self.call_time, patient=False)
        except CmqError as exc:
            raise QueueUnreachable(self.name, exc.cause) from None
        return [] if got is None else [Letter(got.msg_id, got.body, got.receipt, got.dequeue_count)]

    def delete(self, letters: Sequence[Letter]) -> int:
        undeleted = 0
        for letter in letters:
            try:
                self._queue.delete(letter.receipt, time.monotonic() + self.call_time, patient=False)
            except CmqError as exc:
                undeleted += 1
                logger.warning("applied dead letter not deleted", extra={"message_id": letter.id, "error": str(exc)})
        return undeleted

    def release(self, letters: Sequence[Letter]) -> None:
        """Nothing to call: the data-flow API cannot release a message; it is visible again after the timeout."""


class ApplyNow:
    """The modifier now, one record at a time; a new failure is dead-lettered with ``redrives`` = n + 1."""

    counts: tuple[str, ...] = ("failed_again",)
    batch = 1

    def __init__(self, runtime: Runtime, name: str) -> None:
        self._runtime = runtime
        self._name = name

    def redrive(self, due: Sequence[Due], deadline: float, summary: Summary) -> list[Letter]:
        for _letter, doc in due:
            source = Source("redrive", (doc.get("source") or {}).get("id"))
            # the change's whole order key, as it travelled; its history names the redrive that brought it back
            issue = issue_of_record(doc, datetime.now(UTC))._replace(source="redrive")
            outcomes = self._runtime.modifier.apply_all(split_payload(doc["raw"]), deadline, issue)
            try:
                direct.finish(outcomes, source, self._runtime, redrives=redrives_of(doc) + 1)
            except DeadLetterError as exc:  # the original stays; the queue that would keep it is out of reach
                raise QueueUnreachable(self._name, f"a new dead letter could not be written ({exc})") from None
            summary["failed_again"] += any(o.failed for o in outcomes)
        return [letter for letter, _ in due]
