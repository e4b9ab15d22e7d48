"""``main_handler``: the Tencent SCF entry. Recognises each event by its shape (API.md section 5) and
hands it to its adapter; anything else fails with an error naming what was not recognised.

SCF passes ``context`` as a dict, so powertools' Lambda decorators (which want a LambdaContext and flush
EMF) are not used: the logger's keys are set here, and on SCF the counts ride in the log lines.
The deadline is ``time_limit_in_ms`` measured from the start of the invocation.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from handler.compat import UTC
from handler.deadletter.record import WRITE_DEADLINE, Source
from handler.observability import logger, metrics, on_scf
from handler.runtime import Runtime, runtime
from handler.scf import queue
from handler.sources import DEFAULT_BUDGET, FINISH_RESERVE, MalformedEvent, direct

SOURCE_KIND = "scf"
_SHAPES = ('Timer ({"Type": "Timer"}), Function URL (httpMethod, path, headers), API Gateway '
           "(requestContext.serviceId), CKafka (Records[].Ckafka), CMQ Topic (Records[].CMQ) or TDMQ through "
           'EventBridge (data.msgBody, or a batch {"EventList": [...]})')
MAINTENANCE = "maintenance"  # a Timer's Message that runs the maintenance job instead of a payload


class UnrecognisedEvent(MalformedEvent):
    """The event is none of the shapes SCF delivers to this function."""


def main_handler(event: Any, context: Any) -> Any:
    started = time.monotonic()
    ctx = context if isinstance(context, dict) else {}
    _log_context(ctx)
    until = deadline(ctx, started)
    token = WRITE_DEADLINE.set(until)
    try:
        return route(event, ctx, runtime(), until)
    finally:
        WRITE_DEADLINE.reset(token)
        if not on_scf():  # off SCF (a local run) the counts are EMF, as on Lambda: flushed, not kept
            metrics.flush_metrics(raise_on_empty_metrics=False)


def deadline(context: dict[str, Any], started: float) -> float:
    """The monotonic time by which the work must stop: ``time_limit_in_ms`` after ``started``, less FINISH_RESERVE."""
    limit = context.get("time_limit_in_ms")
    if isinstance(limit, int | float) and not isinstance(limit, bool) and limit > 0:
        budget = limit / 1000
    else:
        budget = DEFAULT_BUDGET
    return started + max(budget - FINISH_RESERVE, 0.0)


def _log_context(context: dict[str, Any]) -> None:
    logger.clear_state()
    logger.append_keys(function_name=context.get("function_name"), function_request_id=context.get("request_id"),
                       function_memory_size=context.get("memory_limit_in_mb"))
    logger.set_correlation_id(context.get("request_id"))


def route(event: Any, context: dict[str, Any], rt: Runtime, until: float) -> Any:
    if isinstance(event, dict) and event.get("Type") == "Timer":
        return timer(event, context, rt, until)
    if is_apigw(event) or is_function_url(event):
        from handler.scf import http  # the HTTP route and its resolver: only for HTTP requests

        return http.handle(event, rt, until, context.get("request_id"))
    kind = queue.kind_of(event)
    if kind is not None:
        return queue.handle(kind, event, rt, until)
    raise UnrecognisedEvent(f"not an SCF event this function takes: {describe(event)}; expected {_SHAPES}")


def is_apigw(event: Any) -> bool:
    context = event.get("requestContext") if isinstance(event, dict) else None
    return isinstance(context, dict) and "serviceId" in context


def is_function_url(event: Any) -> bool:
    """A Function URL request (583/96099): API Gateway's shape without ``requestContext``."""
    return (isinstance(event, dict) and "requestContext" not in event and isinstance(event.get("httpMethod"), str)
            and isinstance(event.get("path"), str) and isinstance(event.get("headers"), dict))


def timer(event: dict[str, Any], context: dict[str, Any], rt: Runtime, until: float) -> dict[str, Any]:
    """The trigger's ``Message`` is a direct payload; an empty one means nothing to do."""
    message = event.get("Message")
    if message is None or (isinstance(message, str) and not message.strip()):
        logger.info("timer without a message: nothing to do", extra={"trigger": event.get("TriggerName")})
        return direct.summary([])
    if isinstance(message, str) and message.strip() == MAINTENANCE:
        from handler.scf.maintenance import run as maintain  # the CMQ data-flow client only for this timer

        return maintain(rt, until)
    source = Source(SOURCE_KIND, context.get("request_id"))
    issued = queue.issue_time(event.get("Time"), datetime.now(UTC), "Time")
    return direct.summary(direct.apply(message, source, rt, until, issued=issued))


def describe(event: Any) -> str:
    """What the event is, by its type and keys only (its values may be anyone's data)."""
    if not isinstance(event, dict):
        return f"a JSON {type(event).__name__}"
    if isinstance(event.get("Records"), list) and event["Records"]:
        first = event["Records"][0]
        keys = sorted(map(str, first)) if isinstance(first, dict) else type(first).__name__
        return f"Records[0] with keys {keys}"
    return f"an object with keys {sorted(map(str, event))[:12]}"
