"""``lambda_handler``: recognises each event by its shape and hands it to its adapter.

Routing comes first: powertools' batch processor would take any dict without ``Records`` for an
empty batch and report success, silently dropping a direct payload.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from handler.deadletter.record import Source
from handler.observability import logger, metrics
from handler.runtime import Runtime, runtime
from handler.sources import DEFAULT_BUDGET, FINISH_RESERVE
from handler.tracing import traced

if TYPE_CHECKING:  # its module is only a type: not loaded at a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext


def deadline(context: Any) -> float:
    """The monotonic time by which the work must stop so the function returns in time."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = remaining() / 1000 if callable(remaining) else DEFAULT_BUDGET
    return time.monotonic() + max(budget - FINISH_RESERVE, 0.0)


def is_sqs(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and isinstance(records, list) and isinstance(records[0], dict) and (
        records[0].get("eventSource") == "aws:sqs")


def http_kind(event: Any) -> str | None:
    """``v2``, ``v1`` or ``url`` for an HTTP event (API Gateway's payloads and function URLs), None otherwise."""
    if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
        return None
    context = event["requestContext"]
    if event.get("version") == "2.0" and isinstance(context.get("http"), dict):
        return "url" if ".lambda-url." in str(context.get("domainName", "")) else "v2"
    if "httpMethod" in event and "resourcePath" in context:
        return "v1"
    return None


def route(event: Any, context: Any, rt: Runtime, until: float) -> Any:
    """Hand the event to the adapter its shape names; anything else is a direct payload.

    Each adapter is imported when an event of its kind arrives, so a cold start loads only its own
    trigger's code (and boto3, for instance, only where a queue sink or the state store needs it).
    """
    from handler.aws import schedule

    if is_sqs(event):
        from handler.aws import sqs

        return sqs.handle(event, context, rt, until)
    kind = http_kind(event)
    if kind:
        from handler.sources import http

        return http.handle(event, context, rt, until, kind)
    if schedule.is_scheduled_event(event):
        return schedule.handle(event, rt, until)
    from handler.sources import direct

    request_id = getattr(context, "aws_request_id", None)
    logger.set_correlation_id(request_id)
    return direct.handle(event, Source("direct", request_id), rt, until)


@traced
@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: Any, context: LambdaContext) -> Any:
    return route(event, context, runtime(), deadline(context))
