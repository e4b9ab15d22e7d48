"""What both platforms' maintenance jobs share: their bounds and their report.

``handler.aws.maintenance`` sends retryable dead letters back to the SQS work queue; ``handler.scf.maintenance``
applies those in its TDMQ-CMQ queue again. Each takes these from here, so neither platform imports the other.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from handler.observability import logger, metrics

MAX_PER_RUN = 50  # messages received (redriven or not) per run
MAX_REDRIVES = 3  # rounds through the work queue before a record is left for an operator
RECEIVE_WAIT = 1  # seconds of long polling: a short poll may miss messages on a standard queue
MARGIN = 1.5  # seconds kept back from the deadline for the last receive and the release


def report(summary: dict[str, int], dead_letter_queue: str) -> None:
    """The run's log line and metrics."""
    logger.info("maintenance done", extra={"summary": summary, "dead_letter_queue": dead_letter_queue})
    metrics.add_metric(name="DeadLettersRedriven", unit=MetricUnit.Count, value=summary["redriven"])
    # "kept_at_limit": left in the dead-letter queue for an operator (never dropped)
    metrics.add_metric(name="DeadLettersAtRedriveLimit", unit=MetricUnit.Count, value=summary["kept_at_limit"])
