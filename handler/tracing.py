"""X-Ray tracing through powertools' Tracer: optional, off unless asked for.

Off by default because aws-xray-sdk is not in the bundle and costs cold-start time. To trace, set
``POWERTOOLS_TRACE_DISABLED=false``, enable ``provider.tracing.lambda`` in serverless.yml and add
aws-xray-sdk to the bundle. Responses are never recorded (``capture_response=False``): they echo
request content. Recorded errors carry only exception text, which the client scrubs of UserSigs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


def enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower() == "false"


def traced(handler: F) -> F:
    """``handler`` wrapped by the Tracer when tracing is enabled, else unchanged."""
    if not enabled():
        return handler
    from aws_lambda_powertools import Tracer

    from handler.observability import SERVICE

    return cast(F, Tracer(service=SERVICE).capture_lambda_handler(handler, capture_response=False))
