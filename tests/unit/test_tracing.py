"""Tracing is opt-in: without POWERTOOLS_TRACE_DISABLED=false the handler is not wrapped at all."""

from __future__ import annotations

from typing import Any

import pytest

from handler import tracing


def handler(event: Any, context: Any) -> Any:
    return {"echo": event}


@pytest.mark.parametrize("value", [None, "true", "1", ""])
def test_off_by_default(value: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    else:
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", value)
    assert tracing.traced(handler) is handler


def test_on_wraps_without_recording_the_response(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    captured: dict[str, Any] = {}

    class FakeTracer:  # the X-Ray SDK is the edge: record how the handler is wrapped
        def __init__(self, service: str) -> None:
            captured["service"] = service

        def capture_lambda_handler(self, fn: Any, capture_response: bool) -> Any:
            captured["capture_response"] = capture_response
            return lambda event, context: fn(event, context)

    monkeypatch.setattr("aws_lambda_powertools.Tracer", FakeTracer)
    wrapped = tracing.traced(handler)
    assert wrapped is not handler and wrapped({"a": 1}, None) == {"echo": {"a": 1}}
    assert captured == {"service": "timpush-modifier", "capture_response": False}
