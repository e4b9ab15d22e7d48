"""HTTP: ``PATCH /sched-tasks/{taskId}`` (HTTP API v2, REST v1, function URLs), routed as powertools' resolvers
route (``handler.sources.routing``, which spares every HTTP cold start powertools' event_handler imports).

The answer is the IM envelope with a status from one mapping; failures are answered, never
dead-lettered: the caller owns its retry. Auth and configuration details stay in the logs.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any

from handler.compat import UTC
from handler.im import codes
from handler.im.codes import ErrorClass, Origin
from handler.model import TASK_ID_MAX, Item, TooDeep, loads
from handler.model.jsontext import TOO_DEEP
from handler.observability import logger
from handler.order.key import Issue, text_id
from handler.outcome import ANSWERED, Outcome, Status, fate_of, report
from handler.sources import MalformedEvent, Runtime
from handler.sources.routing import Resolver, Response
from handler.sources.times import platform_time

ROUTE = "/sched-tasks/<taskId>"
RETRY_AFTER_SECONDS = "1"
_CLASS_STATUS = {ErrorClass.INVALID: 400, ErrorClass.AUTH: 500, ErrorClass.UNKNOWN: 502,
                 ErrorClass.RETRYABLE: 502}
_CODE_STATUS = {90106: 409, 90107: 409, codes.SUPERSEDED: 409, 90110: 422, codes.TIMED_OUT: 504,
                codes.SECRET_UNAVAILABLE: 503, codes.STATE_UNAVAILABLE: 503, codes.TASK_BUSY: 429}
_CODE_STATUS.update(dict.fromkeys(codes.RATE_LIMIT_CODES, 429))
HIDDEN = "internal error: see the function's logs"
STORE_HIDDEN = "state store unavailable"  # the store's address and cause stay in the logs (DESIGN "The state store")
# What API Gateway (or a function URL) always sends, by kind: the route reads these strings.
_REQUIRED = {"v1": (("path",), ("httpMethod",)),
             "v2": (("rawPath",), ("requestContext", "http", "method"), ("requestContext", "stage"))}
_REQUIRED["url"] = _REQUIRED["v2"]
_KIND_NAMES = {"v1": "a REST API (payload 1.0) event", "v2": "an HTTP API (payload 2.0) event",
               "url": "a function URL event"}


def status_for(outcome: Outcome) -> int:
    """The HTTP status of DESIGN for an outcome: code first, then class."""
    if outcome.succeeded:
        return 200
    if outcome.secret_missing:
        return 500
    if outcome.code in _CODE_STATUS:
        return _CODE_STATUS[outcome.code]
    return _CLASS_STATUS.get(outcome.error_class or ErrorClass.UNKNOWN, 502)


def envelope(status: int, task_id: int | None, code: int, info: str, errors: Any = None) -> Response:
    doc: dict[str, Any] = {"ActionStatus": "OK" if status == 200 else "FAIL", "ErrorCode": code,
                           "ErrorInfo": info, "TaskID": task_id}
    if errors:
        doc["errors"] = list(errors)
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 429 else None
    return Response(status, "application/json", json.dumps(doc, ensure_ascii=False), headers)


def _modify(app: Resolver, task_id: str) -> Response:
    tid = path_task_id(task_id)
    problem: dict[str, str] | None
    try:
        raw = app.current_event.decoded_body or ""
    except ValueError:  # isBase64Encoded, but not base64 of UTF-8 text
        raw, parsed, problem = "", None, _UNDECODABLE
    else:
        parsed, problem = _body(raw, tid, task_id)
    if problem:
        outcome = Outcome(Status.FAILED, raw, parsed, codes.INVALID_PARAMETERS, problem["message"],
                          ErrorClass.INVALID, Origin.LOCAL, errors=(problem,))
    else:
        runtime: Runtime = app.context["runtime"]
        by = f"{app.context['source_kind']}:{app.context['id']}"
        issue = Issue(request_time(app.current_event.raw_event), by, caller_waiting=True)
        outcome = runtime.modifier.apply(Item(raw=raw, parsed=parsed), app.context["deadline"], issue)
    status = status_for(outcome)
    report(outcome, fate_of(outcome, ANSWERED), {"kind": app.context["source_kind"], "id": app.context["id"]},
           http_status=status)
    info = HIDDEN if status == 500 else STORE_HIDDEN if outcome.code == codes.STATE_UNAVAILABLE else outcome.info
    return envelope(status, tid, outcome.code, info, outcome.errors)


def request_time(event: dict[str, Any]) -> datetime:
    """When API Gateway received the request (``timeEpoch`` v2 and URLs, ``requestTimeEpoch`` v1), else now."""
    context = event.get("requestContext") or {}
    name = "timeEpoch" if "timeEpoch" in context else "requestTimeEpoch"
    return platform_time(context.get(name), datetime.now(UTC), f"requestContext.{name}")


def path_task_id(text: str) -> int | None:
    """The path's taskId when it is ASCII digits naming a positive integer (``str.isdigit`` also takes
    ``²`` and ``١``, which ``int`` refuses or reads as other digits); None otherwise."""
    digits = text.lstrip("0")
    if not (text.isascii() and text.isdigit()) or not digits or len(digits) > len(str(TASK_ID_MAX)):
        return None
    return int(digits)


def _path_problem(path_id: str) -> dict[str, str]:
    return {"field": "taskId", "message": f"taskId: the path must hold a positive integer, got {path_id[:30]!r}"}


_NOT_AN_OBJECT = {"field": "body", "message": "body: must be a JSON object (the modification)"}
_TOO_DEEP = {"field": "body", "message": f"body: {TOO_DEEP}"}
_UNDECODABLE = {"field": "body", "message": "body: isBase64Encoded, but not base64 of UTF-8 text"}


def _body(raw: str, task_id: int | None, path_id: str) -> tuple[Any, dict[str, str] | None]:
    """The JSON body with the path's TaskID filled in; or the field problem that refuses it."""
    if task_id is None:
        return None, _path_problem(path_id)
    try:
        parsed = loads(raw)
    except TooDeep:
        return None, _TOO_DEEP
    except ValueError:
        return None, _NOT_AN_OBJECT
    if not isinstance(parsed, dict):
        return parsed, _NOT_AN_OBJECT
    if "TaskID" in parsed and str(parsed["TaskID"]) != str(task_id):
        return parsed, {"field": "TaskID", "message": f"TaskID: {str(parsed['TaskID'])[:30]} does not match "
                                                      f"the path's {task_id}"}
    return {"TaskID": task_id, **parsed}, None


def _not_found(app: Resolver) -> Response:
    path = app.current_event.path
    if path.rstrip("/").startswith("/sched-tasks/") and path.count("/") == 2:
        if app.current_event.http_method == "PATCH":  # the route's pattern refused the taskId's characters
            problem = _path_problem(path.rsplit("/", 1)[-1])
            return envelope(400, None, codes.INVALID_PARAMETERS, problem["message"], [problem])
        response = envelope(405, None, codes.INVALID_PARAMETERS, f"method not allowed on {path}; use PATCH")
        response.headers["Allow"] = "PATCH"
        return response
    return envelope(404, None, codes.INVALID_PARAMETERS, f"no route {path}; use PATCH /sched-tasks/{{taskId}}")


def _build(resolver: Resolver) -> Resolver:
    resolver.route(ROUTE, method="PATCH")(lambda taskId: _modify(resolver, taskId))  # noqa: N803
    resolver.not_found(lambda _exc: _not_found(resolver))
    return resolver


@cache
def _resolver(kind: str) -> Resolver:
    """The kind's resolver, built on its first event: a cold start compiles its own kind's route only."""
    return _build(Resolver(kind))


def handle(event: dict[str, Any], context: Any, runtime: Runtime, deadline: float, kind: str,
           source_kind: str = "http") -> Any:
    """The resolver's answer; ``source_kind`` is what the log lines name as the source (``scf`` on SCF)."""
    check_event(event, kind)
    resolver = _resolver(kind)
    request_id = event["requestContext"].get("requestId")
    request_id = text_id(request_id) if isinstance(request_id, str) else request_id
    logger.set_correlation_id(request_id)
    resolver.context.update(runtime=runtime, deadline=deadline, id=request_id, source_kind=source_kind)
    try:
        return resolver.resolve(event, context)
    finally:
        resolver.context.clear()


def check_event(event: dict[str, Any], kind: str) -> None:
    """MalformedEvent naming the first field the route needs that the event lacks (only a hand-made one can)."""
    for path in _REQUIRED[kind]:
        value: Any = event
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, str):
            problem = "missing" if value is None else "not a string"
            raise MalformedEvent(f"{'.'.join(path)}: {problem} in {_KIND_NAMES[kind]}")
    body = event.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedEvent(f"body: a JSON {type(body).__name__}, not a string, in {_KIND_NAMES[kind]}")
