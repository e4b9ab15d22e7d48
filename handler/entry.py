"""``lambda_handler``: recognises each event by its shape and hands it to its adapter."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from handler.deadletter import Source
from handler.observability import logger, metrics
from handler.runtime import runtime
from handler.sources import direct

DEADLINE_MARGIN = 2.0  # seconds kept back to report, dead-letter and return before Lambda's timeout
DEFAULT_BUDGET = 60.0  # when the context cannot say (local runs)


def deadline(context: Any) -> float:
    """The monotonic time by which the work must stop so the function returns in time."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = remaining() / 1000 if callable(remaining) else DEFAULT_BUDGET
    return time.monotonic() + max(budget - DEADLINE_MARGIN, 0.0)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: Any, context: LambdaContext) -> Any:
    request_id = getattr(context, "aws_request_id", None)
    logger.set_correlation_id(request_id)
    return direct.handle(event, Source("direct", request_id), runtime(), deadline(context))
