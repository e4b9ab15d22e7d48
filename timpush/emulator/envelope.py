"""The IM JSON envelope, the error codes the emulator answers, and the error that carries them."""

from __future__ import annotations

APIS = ("add_sched_task", "modify_sched_task", "delete_sched_task", "get_sched_task", "list_sched_task")
# These three echo TaskID, and answer TaskID 0 on an API-level failure (API.md §1.4, §1.5).
_TASK_ID_APIS = frozenset({"add_sched_task", "modify_sched_task", "delete_sched_task"})
_API_LEVEL = 90000  # below: the common REST layer, whose answers carry no API fields

INVALID_URL = 60002
BAD_JSON = 60003
BAD_ACCOUNT = 60004
RATE_LIMITED = 60007
UNKNOWN_RESOURCE = 60009
NOT_ADMIN = 60010
SDKAPPID_MISSING = 60012
APP_NOT_FOUND = 70020
INVALID_PARAMS = 90104
INTERNAL_ERROR = 90105
DISPATCHED = 90106
DISPATCHING = 90107
TIME_INVALID = 90110

RATE_LIMIT_INFO = "REST API call frequency exceeds limit"


class ApiError(Exception):
    """A refusal the emulated server answers with ``code`` and ``info`` in the envelope."""

    def __init__(self, code: int, info: str) -> None:
        super().__init__(info)
        self.code = code
        self.info = info


def success(fields: dict[str, object]) -> dict[str, object]:
    return {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0, **fields}


def failure(api: str | None, code: int, info: str) -> dict[str, object]:
    """A FAIL envelope; API-level codes of add/modify/delete carry ``TaskID: 0`` like the docs show."""
    body: dict[str, object] = {"ActionStatus": "FAIL", "ErrorInfo": info, "ErrorCode": code}
    if api in _TASK_ID_APIS and code >= _API_LEVEL:
        body["TaskID"] = 0
    return body
