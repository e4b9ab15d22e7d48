"""Tracing is opt-in: without POWERTOOLS_TRACE_DISABLED=false the handler is not wrapped at all."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture
def real_tracer(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Any]]:
    """powertools' own Tracer, its X-Ray provider disabled (off Lambda it disables itself: no LAMBDA_TASK_ROOT)."""
    import aws_xray_sdk
    from aws_lambda_powertools import Tracer

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")  # our switch: wrap the handler
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    sdk_was_enabled = aws_xray_sdk.global_sdk_config.sdk_enabled()
    Tracer._reset_config()
    yield Tracer
    Tracer._reset_config()
    aws_xray_sdk.global_sdk_config.set_sdk_enabled(sdk_was_enabled)


def test_on_wraps_without_recording_the_response(real_tracer: type[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    recorded: list[dict[str, Any]] = []
    add_response = real_tracer._add_response_as_metadata

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:  # the Tracer's own method, called through
        recorded.append(kwargs)
        return add_response(self, *args, **kwargs)

    monkeypatch.setattr(real_tracer, "_add_response_as_metadata", spy)
    wrapped = tracing.traced(handler)
    # the handler is wrapped by the real Tracer, answers as before, and its response is not recorded
    assert wrapped is not handler and wrapped.__wrapped__ is handler  # type: ignore[attr-defined]
    assert wrapped({"a": 1}, None) == {"echo": {"a": 1}}
    assert [(r["method_name"], r["data"], r["capture_response"]) for r in recorded] == [
        ("handler", {"echo": {"a": 1}}, False)]
    assert real_tracer._config["service"] == "timpush-modifier"
