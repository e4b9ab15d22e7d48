"""SCF's maintenance job: retryable dead letters in the ``tdmq-cmq:`` queue are applied again, within bounds.

A Timer whose ``Message`` is ``maintenance`` runs it (the descriptor fires one every 10 minutes). SCF has
no work queue to send a body back to, so the job applies it through the modifier itself, as
``timpush redrive --to direct`` does: it reads up to MAX_PER_RUN messages from the queue that the
``retryable`` class routes to (each received message stays hidden for the queue's visibility timeout, so
one run never sees it twice), applies the due ones in order of their issue time (DESIGN "Order": an older
change never undoes a newer one), writes any new failure as a dead letter with ``redrives`` = n + 1, and
deletes the original only then. A message that is not a record, not ``retryable``, or at MAX_REDRIVES is
left for an operator (``timpush redrive --from tdmq-cmq:...``); it is visible again after the timeout.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handler.compat import UTC
from handler.deadletter.cmq import CmqError, CmqQueue, Received
from handler.deadletter.record import Source, issued_at_of, parse_record, parse_tdmq_target, record, redrives_of
from handler.im.codes import ErrorClass
from handler.model import split_payload
from handler.observability import logger
from handler.order.key import Issue
from handler.outcome import DEAD_LETTERED, report_all
from handler.runtime import Runtime
from handler.sources.maintenance import MARGIN, MAX_PER_RUN, MAX_REDRIVES, RECEIVE_WAIT, report

SCHEME = "tdmq-cmq:"


def run(runtime: Runtime, deadline: float) -> dict[str, int]:
    """Apply again what is due; return and log ``{"redriven", "failed_again", "kept", "kept_at_limit"}``."""
    summary = {"redriven": 0, "failed_again": 0, "kept": 0, "kept_at_limit": 0}
    spec = runtime.dead_letters.class_route(ErrorClass.RETRYABLE)
    if not spec.startswith(SCHEME):
        logger.info("maintenance idle: retryable dead letters are not routed to a tdmq-cmq: queue",
                    extra={"retryable_route": spec.split(":", 1)[0]})
        return summary
    region, name = parse_tdmq_target(spec[len(SCHEME):])
    job = _Job(runtime, CmqQueue(region, name, os.environ), deadline, summary)
    try:
        job.run()
    finally:
        report(summary, spec)
    return summary


@dataclass
class _Job:
    runtime: Runtime
    queue: CmqQueue
    deadline: float
    summary: dict[str, int]
    seen: set[str] = field(default_factory=set)

    def run(self) -> None:
        due = [(m, doc) for m in self._receive() if (doc := self._due(m)) is not None]
        due.sort(key=lambda pair: issued_at_of(pair[1]) or datetime.min.replace(tzinfo=UTC))
        for index, (message, doc) in enumerate(due):
            if time.monotonic() >= self.deadline - MARGIN:  # the rest return after the visibility timeout
                self.summary["kept"] += len(due) - index
                return
            self._apply(message, doc)

    def _receive(self) -> list[Received]:
        """Up to MAX_PER_RUN messages, each hidden from now on; stops at an empty queue or one seen again."""
        got: list[Received] = []
        while len(got) < MAX_PER_RUN and time.monotonic() < self.deadline - MARGIN:
            message = self.queue.receive(RECEIVE_WAIT, self.deadline - MARGIN)
            if message is None or message.msg_id in self.seen:
                break
            self.seen.add(message.msg_id)
            got.append(message)
        return got

    def _due(self, message: Received) -> dict[str, Any] | None:
        """The record when it is to be applied again; otherwise count it and leave the message."""
        doc = parse_record(message.body)
        if doc is None or doc["error"].get("class") != ErrorClass.RETRYABLE:
            self.summary["kept"] += 1
            return None
        if redrives_of(doc) < MAX_REDRIVES:
            return doc
        self.summary["kept_at_limit"] += 1
        if message.dequeue_count <= 1:  # the first run that sees it says so; later runs stay quiet
            logger.warning("dead letter reached the redrive limit; left for an operator (timpush redrive)",
                           extra={"error_code": doc["error"]["code"], "redrives": redrives_of(doc),
                                  "message_id": message.msg_id})
        return None

    def _apply(self, message: Received, doc: dict[str, Any]) -> None:
        """Apply the record's body; dead-letter new failures (``redrives`` + 1), then delete the original."""
        source = Source("redrive", (doc.get("source") or {}).get("id"))
        issue = Issue(issued_at_of(doc) or datetime.now(UTC), f"redrive:{source.id}")
        outcomes = self.runtime.modifier.apply_all(split_payload(doc["raw"]), self.deadline, issue)
        failures = [record(o, source, redrives=redrives_of(doc) + 1) for o in outcomes if o.failed]
        self.runtime.dead_letters.send(failures)  # DeadLetterError: the original stays, the run stops
        self.runtime.modifier.dead_lettered(outcomes)
        report_all(outcomes, DEAD_LETTERED, source.as_dict())
        self.summary["redriven"] += 1
        self.summary["failed_again"] += bool(failures)
        try:
            self.queue.delete(message.receipt, self.deadline)
        except CmqError as exc:
            logger.warning("applied dead letter not deleted; it comes back and is applied again (an equal "
                           "change is not sent twice)", extra={"message_id": message.msg_id, "error": str(exc)})
