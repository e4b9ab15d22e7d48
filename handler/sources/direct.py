"""Direct payloads: a schedule's ``input`` or ``aws lambda invoke`` with one or more modifications.

Every failure is dead-lettered; if a dead letter cannot be written the invocation raises, so
Lambda's own retry and on-failure destination keep the payload.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handler.compat import UTC
from handler.deadletter.record import Source, record
from handler.model import split_payload
from handler.order.key import Issue
from handler.outcome import DEAD_LETTERED, Outcome, fate_of, report_all
from handler.sources import Runtime


def handle(payload: Any, source: Source, runtime: Runtime, deadline: float) -> dict[str, Any]:
    return summary(apply(payload, source, runtime, deadline))


def apply(payload: Any, source: Source, runtime: Runtime, deadline: float, raw: str | None = None,
          issued: datetime | None = None) -> list[Outcome]:
    """Apply every modification of the payload and finish each. ``raw``: the text as received, kept in
    the dead letter of a payload that carries one modification (as an SQS body is). ``issued``: when the
    trigger says the change was made (a modification's own ``IssuedAt`` wins); else the receipt."""
    items = split_payload(payload)
    issue = Issue(issued or datetime.now(UTC), f"{source.kind}:{source.id}")
    outcomes = runtime.modifier.apply_all(items, deadline, issue)
    finish(outcomes, source, runtime, raw if len(items) == 1 else None)
    return outcomes


def finish(outcomes: list[Outcome], source: Source, runtime: Runtime, raw: str | None = None,
           redrives: int = 0) -> None:
    """Dead-letter every failure (``redrives``: how often its body went back to be applied again), write their
    tasks' history entries, then log each outcome; raises DeadLetterError, so the payload is kept."""
    docs = [record(o, source, redrives=redrives) for o in outcomes if o.failed]
    if raw is not None:
        for doc in docs:
            doc["raw"] = raw
    runtime.dead_letters.send(docs)
    runtime.modifier.dead_lettered(outcomes)  # their entries in their tasks' histories
    report_all(outcomes, DEAD_LETTERED, source.as_dict())


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    return {
        "succeeded": sum(o.succeeded for o in outcomes),
        "superseded": sum(o.superseded for o in outcomes),
        "dead_lettered": sum(o.failed for o in outcomes),
        "results": [
            {"TaskID": o.task_id, "ErrorCode": o.code, "ErrorInfo": o.info, "outcome": fate_of(o, DEAD_LETTERED)}
            for o in outcomes
        ],
    }
