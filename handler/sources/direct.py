"""Direct payloads: a schedule's ``input`` or ``aws lambda invoke`` with one or more modifications.

Every failure is dead-lettered; if a dead letter cannot be written the invocation raises, so
Lambda's own retry and on-failure destination keep the payload.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from handler.deadletter import Source, record
from handler.model import split_payload
from handler.observability import DEAD_LETTERED, fate_of, report_all
from handler.outcome import Outcome
from handler.runtime import Runtime
from handler.state import Issue


def handle(payload: Any, source: Source, runtime: Runtime, deadline: float) -> dict[str, Any]:
    issue = Issue(datetime.now(UTC), f"{source.kind}:{source.id}")  # no earlier time is known: receipt
    outcomes = runtime.modifier.apply_all(split_payload(payload), deadline, issue)
    failures = [o for o in outcomes if o.failed]
    runtime.dead_letters.send([record(o, source) for o in failures])  # raises: Lambda keeps the payload
    report_all(outcomes, DEAD_LETTERED, source.as_dict())
    return summary(outcomes)


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
