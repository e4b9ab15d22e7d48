"""The HTTP adapter's resolver answers every event as powertools' resolvers it replaced."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    LambdaFunctionUrlResolver,
)
from aws_lambda_powertools.event_handler import Response as PowertoolsResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from handler.sources.routing import Resolver, Response

POWERTOOLS = {"v1": APIGatewayRestResolver, "v2": APIGatewayHttpResolver, "url": LambdaFunctionUrlResolver}
METHODS = st.sampled_from(["PATCH", "patch", "GET", "POST", "OPTIONS"])
PATHS = st.sampled_from([
    "/sched-tasks/123", "/sched-tasks/0042", "/sched-tasks/12 3", "/sched-tasks/a%20b", "/sched-tasks/",
    "/sched-tasks/1/", "/sched-tasks/1\n", "/dev/sched-tasks/5", "/x", "", "/", "/sched-tasks/é",
    "/sched-tasks/a#b", "/sched-tasks/a/b", "/SCHED-TASKS/1", "/sched-tasks/<1>", "/sched-tasks/'*!",
]) | st.text(max_size=20).map(lambda tail: "/sched-tasks/" + tail)
BODIES = st.none() | st.sampled_from(["", '{"Type": "All"}', "not json", "é"]) | st.text(max_size=10)


def events(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    body = st.tuples(BODIES, st.booleans()).map(
        lambda pair: (base64.b64encode(pair[0].encode()).decode() if pair[1] and pair[0] else pair[0], pair[1]))
    if kind == "v1":
        return st.builds(lambda m, p, b: {"httpMethod": m, "path": p, "resource": "/sched-tasks/{taskId}",
                                          "requestContext": {"resourcePath": "/sched-tasks/{taskId}", "requestId": "r"},
                                          "body": b[0], "isBase64Encoded": b[1]}, METHODS, PATHS, body)
    stages = st.sampled_from(["$default", "dev", "prod"])
    return st.builds(lambda m, p, s, b: {"version": "2.0", "rawPath": p, "body": b[0], "isBase64Encoded": b[1],
                                         "requestContext": {"http": {"method": m}, "stage": s, "requestId": "r"}},
                     METHODS, PATHS, stages, body)


def wire(resolver: Any, response: Callable[..., Any]) -> Any:
    """The same two handlers as handler.sources.http registers, echoing what they were given."""

    def modify(taskId: str) -> Any:  # noqa: N803
        event = resolver.current_event
        seen = {"taskId": taskId, "path": event.path, "method": event.http_method, "body": event.decoded_body}
        headers = {"Retry-After": "1"} if taskId.startswith("1") else None
        return response(200 if taskId.isdigit() else 429, "application/json", json.dumps(seen), headers)

    def not_found(_exc: Exception) -> Any:
        out = response(404, "application/json", json.dumps({"path": resolver.current_event.path,
                                                             "method": resolver.current_event.http_method}))
        out.headers["Allow"] = "PATCH"
        return out

    resolver.route("/sched-tasks/<taskId>", method="PATCH")(modify)
    resolver.not_found(not_found)
    return resolver


def answer(resolver: Any, event: dict[str, Any]) -> Any:
    try:
        return json.loads(json.dumps(resolver.resolve(event, None)))
    except Exception as exc:  # the same failure either way (e.g. a body that is not base64)
        return type(exc).__name__


@pytest.mark.parametrize("kind", ["v1", "v2", "url"])
@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_answers_as_powertools(kind: str, data: st.DataObject) -> None:
    event = data.draw(events(kind))
    mine, theirs = wire(Resolver(kind), Response), wire(POWERTOOLS[kind](), PowertoolsResponse)
    assert answer(mine, event) == answer(theirs, event)


def test_a_body_that_is_not_utf8_fails_the_call_as_before() -> None:
    event = {"httpMethod": "PATCH", "path": "/sched-tasks/1", "body": "gA==", "isBase64Encoded": True,
             "requestContext": {"resourcePath": "/", "requestId": "r"}}
    assert answer(wire(Resolver("v1"), Response), event) == answer(wire(APIGatewayRestResolver(), PowertoolsResponse),
                                                                   event) == "UnicodeDecodeError"


def test_context_is_cleared_after_each_call() -> None:
    resolver = wire(Resolver("v2"), Response)
    resolver.context.update(runtime="x")
    resolver.resolve({"rawPath": "/x", "requestContext": {"http": {"method": "GET"}, "stage": "$default"}}, None)
    assert resolver.context == {}


def test_no_request_is_kept_after_the_call_ends() -> None:
    # A resolver lives for the process: the body it answered (a caller's data) must not outlive the call
    resolver = wire(Resolver("v2"), Response)
    event = {"rawPath": "/x", "body": '{"Title": "someone else\'s"}',
             "requestContext": {"http": {"method": "PATCH"}, "stage": "$default"}}
    resolver.resolve(event, None)
    assert resolver.current_event.raw_event == {}
