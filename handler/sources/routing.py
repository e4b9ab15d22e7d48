"""The HTTP adapter's resolver: routes and answers as powertools' API Gateway resolvers do, for what we use.

powertools' ``event_handler`` package imports every resolver it has (AppSync with asyncio, Bedrock, VPC
Lattice, OpenAPI) and every event data class: ~20-35 ms of each HTTP cold start, for one route. This keeps
the behaviour the function relies on and nothing more: a route rule with ``<name>`` segments matched as
powertools matches them (method upper-cased, the same characters and anchors, REST's trailing slashes), a
not-found handler,
the request's method, path (a v2 stage stripped as powertools strips it) and base64-decoded body, and the
answer in the trigger's shape (REST v1: ``multiValueHeaders``; HTTP API v2 and function URLs: ``headers``
and ``cookies``). No CORS, compression or middlewares: none are configured. tests/unit/test_routing.py
compares the answers with powertools' resolvers.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

KINDS = ("v1", "v2", "url")  # REST API (payload 1.0), HTTP API (2.0), Lambda function URL
# powertools' characters of a dynamic segment (RFC 3986's unreserved and sub-delims, and the unsafe ones)
_SEGMENT = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"


class Response:
    """An answer before it is shaped for its trigger; ``Content-Type`` is added unless given."""

    def __init__(self, status_code: int, content_type: str | None, body: str,
                 headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.body = body
        self.headers: dict[str, str] = headers if headers else {}
        if content_type:
            self.headers.setdefault("Content-Type", content_type)


class NotFound(Exception):
    """Handed to the not-found handler, as powertools hands it its ``NotFoundError``."""


class Request:
    """The parts of an API Gateway or function URL event the route reads (``http.check_event`` checked them)."""

    def __init__(self, event: dict[str, Any], kind: str) -> None:
        self.raw_event = event
        self.kind = kind

    @property
    def http_method(self) -> str:
        method: str = self.raw_event["httpMethod"] if self.kind == "v1" else (
            self.raw_event["requestContext"]["http"]["method"])
        return method

    @property
    def path(self) -> str:
        path: str = self.raw_event["path"] if self.kind == "v1" else self.raw_event["rawPath"]
        if self.kind == "v1":
            return path
        stage = self.raw_event["requestContext"]["stage"]
        return path[len("/" + stage):] if stage != "$default" else path  # a named stage prefixes rawPath

    @property
    def decoded_body(self) -> str | None:
        body: str | None = self.raw_event.get("body")
        if self.raw_event.get("isBase64Encoded") and body:
            return base64.b64decode(body.encode()).decode()
        return body


Handler = Callable[..., Response]


class Resolver:
    """``route`` and ``not_found`` register handlers; ``resolve`` answers one event; ``context`` holds what the
    handlers need during that call (cleared after it)."""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown HTTP event kind {kind!r}")
        self.kind = kind
        self.context: dict[str, Any] = {}
        self.current_event = Request({}, kind)
        self._routes: list[tuple[re.Pattern[str], str, Handler]] = []
        self._not_found: Callable[[Exception], Response] | None = None

    def route(self, rule: str, method: str) -> Callable[[Handler], Handler]:
        if self.kind == "v1":  # powertools' REST resolver ignores trailing slashes, on the rule and on the path
            rule = rule.rstrip("/")
        segments = re.sub(r"<(\w+)>", lambda name: f"(?P<{name[1]}>{_SEGMENT})", rule)
        pattern = re.compile("^" + segments + ("/*$" if self.kind == "v1" else "$"))

        def register(handler: Handler) -> Handler:
            self._routes.append((pattern, method.upper(), handler))
            return handler

        return register

    def not_found(self, handler: Callable[[Exception], Response]) -> Callable[[Exception], Response]:
        self._not_found = handler
        return handler

    def resolve(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        self.current_event = Request(event, self.kind)
        try:
            return self._shape(self._answer())
        finally:  # a resolver lives as long as the process: it keeps no request (a body, a caller's data) after it
            self.context.clear()
            self.current_event = Request({}, self.kind)

    def _answer(self) -> Response:
        method = self.current_event.http_method.upper()
        path = self.current_event.path
        for pattern, wanted, handler in self._routes:
            if method == wanted and (match := pattern.match(path)):
                return handler(**match.groupdict())
        if self._not_found is None:
            raise NotFound(path)
        return self._not_found(NotFound(path))

    def _shape(self, response: Response) -> dict[str, Any]:
        out: dict[str, Any] = {"statusCode": response.status_code, "body": response.body, "isBase64Encoded": False}
        if self.kind == "v1":
            out["multiValueHeaders"] = {name: [value] for name, value in response.headers.items()}
        else:
            out.update(headers=dict(response.headers), cookies=[])
        return out
