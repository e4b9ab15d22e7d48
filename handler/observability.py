"""Structured logs and EMF metrics (powertools), one log line per outcome.

Logs go to stderr so that ``timpush invoke`` keeps stdout for the return value; on Lambda both
streams land in CloudWatch Logs alike, and SCF ships both to its log service. EMF is CloudWatch's
format: on SCF (``TENCENTCLOUD_RUNENV=SCF``) the counts go out as a ``metrics`` field of the outcome's
log line instead. Nothing here ever receives a key or a UserSig.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from handler.im.codes import ErrorClass
from handler.model import format_issued_at
from handler.outcome import Outcome

SERVICE = "timpush-modifier"
NAMESPACE = "TimpushModifier"  # POWERTOOLS_METRICS_NAMESPACE overrides

# An invocation with nothing to count (the idle maintenance job) still flushes the cold-start metric.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service=SERVICE, stream=sys.stderr)
# An explicit namespace would beat the variable, so the default is applied only when it is unset.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE)

# The final fate of a modification, as logged under "outcome".
SUCCEEDED = "succeeded"
SUPERSEDED = "superseded"
RETRY = "retry"
DEAD_LETTERED = "dead_lettered"
ANSWERED = "answered"

RUNENV_VAR = "TENCENTCLOUD_RUNENV"  # SCF sets it to "SCF" in every function

_METRIC_FOR = {SUCCEEDED: "ModificationsSucceeded", SUPERSEDED: "ModificationsSuperseded",
               RETRY: "ModificationsRetried", DEAD_LETTERED: "ModificationsDeadLettered",
               ANSWERED: "ModificationsAnswered"}


def report(outcome: Outcome, fate: str, source: dict[str, Any], **extra: Any) -> None:
    """Log one line for the outcome and count it; auth failures are logged loudly."""
    fields = _fields(outcome, fate, source, extra)
    counts = _counts(outcome, fate)
    if on_scf():
        fields["metrics"] = {name: value for name, _unit, value in counts}
    else:
        for name, unit, value in counts:
            metrics.add_metric(name=name, unit=unit, value=value)
        _count_for_app(outcome)  # on SCF the line's own sdkappid field says which app
    _log(outcome, fate, fields)


def _fields(outcome: Outcome, fate: str, source: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    fields = {
        "task_id": outcome.task_id,
        "task_type": outcome.task_type,
        "sdkappid": outcome.sdkappid,
        "outcome": fate,
        "error_code": outcome.code,
        "error_class": str(outcome.error_class) if outcome.error_class else None,
        "origin": str(outcome.origin) if outcome.origin else None,
        "error_info": outcome.info or None,
        "attempts": outcome.attempts,
        "latency_ms": outcome.latency_ms,
        "source": source,
        **extra,
    }
    if outcome.dropped:  # which newer change won each field left out (DESIGN "Order")
        fields["superseded_by"] = dict(outcome.dropped)
    if outcome.issued_at is not None:
        fields["issued_at"] = format_issued_at(outcome.issued_at)
    return fields


def _log(outcome: Outcome, fate: str, fields: dict[str, Any]) -> None:
    if outcome.superseded:
        logger.info("modification superseded by a newer change", extra=fields)
    elif outcome.succeeded:
        logger.info("modification succeeded" + (" (older fields left out)" if outcome.dropped else ""),
                    extra=fields)
    elif outcome.error_class is ErrorClass.AUTH:
        logger.error("modification failed: IM refused the admin credentials", extra=fields)
    else:
        logger.warning(f"modification {fate}", extra=fields)


def report_all(outcomes: list[Outcome], failed_fate: str, source: dict[str, Any]) -> None:
    """One line each: succeeded, superseded, or ``failed_fate`` (retry, dead_lettered) for the rest."""
    for outcome in outcomes:
        report(outcome, fate_of(outcome, failed_fate), source)


def fate_of(outcome: Outcome, failed_fate: str) -> str:
    if outcome.superseded:
        return SUPERSEDED
    return SUCCEEDED if outcome.succeeded else failed_fate


def on_scf() -> bool:
    return os.environ.get(RUNENV_VAR) == "SCF"


def _counts(outcome: Outcome, fate: str) -> list[tuple[str, MetricUnit, float]]:
    """The metrics one outcome adds: its fate, its failure class, the upstream latency."""
    counts = [(_METRIC_FOR[fate], MetricUnit.Count, 1.0)]
    if outcome.error_class is not None and outcome.failed:
        counts.append((f"Failed_{outcome.error_class}", MetricUnit.Count, 1.0))
    if outcome.attempts:
        counts.append(("UpstreamLatency", MetricUnit.Milliseconds, outcome.latency_ms))
    return counts


def _count_for_app(outcome: Outcome) -> None:
    """A failure again, with an ``sdkappid`` dimension, so an alarm can name the app that fails.

    A single metric of its own: powertools applies a dimension to every metric of a flush, which would
    split the batch's other counts by whichever app came last. Failures only, to keep the EMF lines few.
    """
    if outcome.error_class is None or not outcome.failed or outcome.sdkappid is None:
        return
    name = f"Failed_{outcome.error_class}"
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="sdkappid", value=str(outcome.sdkappid))
