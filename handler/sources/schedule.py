"""EventBridge: a bare ``Scheduled Event`` envelope runs the maintenance job."""

from __future__ import annotations

from typing import Any

from handler.observability import logger
from handler.runtime import Runtime


def is_scheduled_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("detail-type") == "Scheduled Event" and "source" in event


def handle(event: dict[str, Any], runtime: Runtime, deadline: float) -> dict[str, Any]:
    logger.set_correlation_id(event.get("id"))
    try:
        from handler import maintenance
    except ImportError:  # the redrive job arrives with the dead-letter work; until then, idle
        logger.info("maintenance: nothing to do", extra={"redriven": 0})
        return {"succeeded": 0, "dead_lettered": 0, "results": []}
    return maintenance.run(runtime, deadline)
