"""Stand-ins for the context each platform passes, for running the handler outside the cloud."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LocalContext:
    function_name: str = "timpush-modifier-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    timeout_seconds: float = 60.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/timpush-modifier-local"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def scf_context(timeout_seconds: float = 60.0, function_name: str = "timpush-modifier-local") -> dict[str, object]:
    """The dict SCF passes as ``context`` (API.md 5.1)."""
    return {
        "request_id": str(uuid.uuid4()), "function_name": function_name, "function_version": "$LATEST",
        "namespace": "default", "memory_limit_in_mb": 256, "time_limit_in_ms": int(timeout_seconds * 1000),
        "environment": "{}",
    }
