"""SCF's HTTP events: a Function URL request and API Gateway's (gateways made before Tencent retired them),
each the same ``PATCH /sched-tasks/{taskId}`` as on AWS, answered alike.

The event (API.md 5.3, 5.7) is handed in its shape to the shared route's REST (v1) resolver (``handler.sources.http``),
so the route, the statuses and the body are one code path; the answer goes back as SCF wants it: API Gateway's
integration response, or a Function URL's ``{"statusCode", "headers", "body"}``. The task id comes from
``pathParameters.taskId`` when the API names it so, else from the path. A Function URL event has no
``requestContext``: Tencent documents no request-time or request-id header for it (583/96099), so its issue
time is the receipt and its id the invocation's ``request_id``.
"""

from __future__ import annotations

from typing import Any

from handler.runtime import Runtime
from handler.sources import http

SOURCE_KIND = "scf"


def handle(event: dict[str, Any], runtime: Runtime, deadline: float, request_id: str | None = None
           ) -> dict[str, Any]:
    """Answer an API Gateway event, or a Function URL one (no ``requestContext``; ``request_id`` names it)."""
    answer = integration_response(http.handle(as_rest_v1(event, request_id), None, runtime, deadline, "v1",
                                              SOURCE_KIND))
    if not isinstance(event.get("requestContext"), dict):
        del answer["isBase64Encoded"]  # a Function URL's answer is statusCode, headers and body (583/96099)
    return answer


def as_rest_v1(event: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
    """The SCF event in API Gateway REST (payload 1.0) form, which the v1 resolver reads."""
    given = event.get("requestContext")
    context = given if isinstance(given, dict) else {"requestId": request_id}
    method = str(event.get("httpMethod") or context.get("httpMethod") or "")
    return {
        "resource": context.get("path") or "/",
        "path": _path(event),
        "httpMethod": method,
        "headers": _strings(event.get("headers")),
        "multiValueHeaders": {},
        "queryStringParameters": _strings(event.get("queryString") or event.get("queryStringParameters")),
        "multiValueQueryStringParameters": {},
        "pathParameters": _strings(event.get("pathParameters")),
        "stageVariables": _strings(event.get("stageVariables")),
        "requestContext": {"requestId": context.get("requestId"), "resourcePath": context.get("path") or "/",
                           "httpMethod": method, "stage": context.get("stage"),
                           "identity": {"sourceIp": context.get("sourceIp")}},
        "body": event.get("body") if isinstance(event.get("body"), str) else None,
        "isBase64Encoded": bool(event.get("isBase64Encoded", False)),
    }


def _path(event: dict[str, Any]) -> str:
    """The route path: ``/sched-tasks/{pathParameters.taskId}`` when the API passes it (its own path may
    carry a prefix), else the request path."""
    parameters = event.get("pathParameters")
    task_id = parameters.get("taskId") if isinstance(parameters, dict) else None
    if isinstance(task_id, str | int) and not isinstance(task_id, bool):
        return f"/sched-tasks/{task_id}"
    return str(event.get("path") or "/")


def _strings(values: Any) -> dict[str, str]:
    """A header or query map with string values: SCF gives a bare query key as ``true`` and a repeated
    one as a list (API.md 5.3); the last value wins, as API Gateway's single-value maps do."""
    if not isinstance(values, dict):
        return {}
    flat = {}
    for key, value in values.items():
        if isinstance(value, list):
            value = value[-1] if value else ""
        flat[str(key)] = "" if value is True else str(value)
    return flat


def integration_response(answer: dict[str, Any]) -> dict[str, Any]:
    """The resolver's answer in SCF's integration-response shape (single-value headers)."""
    headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        headers[str(name)] = ", ".join(str(v) for v in values)
    return {"isBase64Encoded": False, "statusCode": int(answer["statusCode"]), "headers": headers,
            "body": answer.get("body") or ""}
