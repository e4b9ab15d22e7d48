"""The result of one modification, the only thing adapters see of the service, and the one log line (with its
metrics) each outcome leaves: succeeded, superseded, or the fate an adapter gives a failure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from handler.compat import StrEnum
from handler.im.codes import ErrorClass, Origin
from handler.model import format_issued_at
from handler.observability import logger, metrics, on_scf

if TYPE_CHECKING:
    from handler.order.history import Draft
    from handler.order.key import Stamp


class Status(StrEnum):
    SUCCEEDED = "succeeded"
    SUPERSEDED = "superseded"  # finished without sending: a newer change was applied (-7)
    FAILED = "failed"


class Outcome(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    """``request`` is the modification as parsed (normalised when valid), None when it was not JSON."""

    status: Status
    raw: str
    request: Any
    code: int = 0
    info: str = ""
    error_class: ErrorClass | None = None
    origin: Origin | None = None
    attempts: int = 0
    latency_ms: float = 0.0
    errors: tuple[dict[str, str], ...] = ()  # field problems from local validation
    http_status: int | None = None
    secret_missing: bool = False  # -5 because the secret does not exist: a configuration error, not an outage
    issued_at: datetime | None = None  # the modification's issue time (DESIGN "Order")
    dropped: Mapping[str, Any] = MappingProxyType({})  # field -> the newer change that won it
    sdkappid: int | None = None  # the app it was for, once known (logs, per-app metrics, dead letters)
    stamp: Stamp | None = None  # a failure's whole order key, which its dead letter keeps (DESIGN "Order")
    history: Draft | None = None  # a failure's entry-to-be in its task's history, once it is dead-lettered
    # Succeeded without a request: every field was last applied by this same change (a redelivery). The task
    # history writes no second entry for it; the log and the metric name it apart from a real success.
    already_applied: bool = False

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED

    @property
    def superseded(self) -> bool:
        return self.status is Status.SUPERSEDED

    @property
    def succeeded(self) -> bool:
        return self.status is Status.SUCCEEDED

    @property
    def retryable(self) -> bool:
        return self.error_class is ErrorClass.RETRYABLE

    @property
    def task_id(self) -> Any:
        return self.request.get("TaskID") if isinstance(self.request, dict) else None

    @property
    def task_type(self) -> Any:
        return self.request.get("Type") if isinstance(self.request, dict) else None


# The final fate of a modification, as logged under "outcome".
SUCCEEDED = "succeeded"
SUPERSEDED = "superseded"
RETRY = "retry"
DEAD_LETTERED = "dead_lettered"
ANSWERED = "answered"


_METRIC_FOR = {SUCCEEDED: "ModificationsSucceeded", SUPERSEDED: "ModificationsSuperseded",
               RETRY: "ModificationsRetried", DEAD_LETTERED: "ModificationsDeadLettered",
               ANSWERED: "ModificationsAnswered"}
ALREADY_APPLIED_METRIC = "ModificationsAlreadyApplied"  # a success that sent nothing: counted apart


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
    elif outcome.already_applied:
        logger.info("modification already applied", extra=fields)
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


def _counts(outcome: Outcome, fate: str) -> list[tuple[str, MetricUnit, float]]:
    """The metrics one outcome adds: its fate, its failure class, the upstream latency."""
    name = ALREADY_APPLIED_METRIC if outcome.already_applied else _METRIC_FOR[fate]
    counts = [(name, MetricUnit.Count, 1.0)]
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
