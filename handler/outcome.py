"""The result of one modification, the only thing adapters see of the service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from handler.compat import StrEnum
from handler.im.codes import ErrorClass, Origin

if TYPE_CHECKING:
    from handler.order.key import Stamp


class Status(StrEnum):
    SUCCEEDED = "succeeded"
    SUPERSEDED = "superseded"  # finished without sending: a newer change was applied (-7)
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
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
    dropped: Mapping[str, Any] = field(default_factory=dict)  # field -> the newer change that won it
    sdkappid: int | None = None  # the app it was for, once known (logs, per-app metrics, dead letters)
    stamp: Stamp | None = None  # a failure's whole order key, which its dead letter keeps (DESIGN "Order")

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
