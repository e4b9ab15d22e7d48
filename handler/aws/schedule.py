"""EventBridge: a bare ``Scheduled Event`` envelope runs the maintenance job (dead-letter redrive).

A schedule with an ``input`` never reaches here: EventBridge delivers the input itself, a direct payload.
"""

from __future__ import annotations

from typing import Any

from handler.observability import logger
from handler.order.key import text_id
from handler.runtime import Runtime


def is_scheduled_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("detail-type") == "Scheduled Event" and "source" in event


def handle(event: dict[str, Any], runtime: Runtime, deadline: float) -> dict[str, Any]:
    from handler.aws import maintenance  # boto3 comes with it, so only the schedule pays for it

    ident = event.get("id")
    logger.set_correlation_id(text_id(ident) if isinstance(ident, str) else ident)
    return maintenance.run(runtime, deadline)
