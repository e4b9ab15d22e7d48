"""Every error code and its class, in one table (DESIGN "Outcomes and error classes").

The class decides what happens to a failed modification: retried, dead-lettered at once, or
dead-lettered loudly. Nothing else in the code base matches on codes or messages.
"""

from __future__ import annotations

from handler.compat import StrEnum


class ErrorClass(StrEnum):
    INVALID = "invalid"
    TOO_LATE = "too_late"
    RETRYABLE = "retryable"
    AUTH = "auth"
    UNKNOWN = "unknown"
    SUPERSEDED = "superseded"  # not a failure: a newer change was applied (-7)


class Origin(StrEnum):
    LOCAL = "local"  # refused or failed before sending (validation, secret)
    REMOTE = "remote"  # the API's own ErrorCode
    TRANSPORT = "transport"  # HTTP or network


# The project's own codes for failures that carry no IM code.
CONNECTION_FAILED = -1
TIMED_OUT = -2
HTTP_STATUS = -3
NOT_ENVELOPE = -4
SECRET_UNAVAILABLE = -5
STATE_UNAVAILABLE = -6  # the state store (task order) could not be reached
SUPERSEDED = -7  # every field is older than (or the same as) one already applied
TASK_BUSY = -8  # another modification of the task held its lease for as long as this one could wait

# Codes the service reacts to specifically, beyond their class.
INVALID_PARAMETERS = 90104
RATE_LIMITED = 60007  # also given locally when no send slot of the budget comes before the deadline
SCHED_TIME_PASSED = 90110
SIG_EXPIRED = 70001
SIG_INVALIDATED = 70052
REFRESH_SIG_CODES = frozenset({SIG_EXPIRED, SIG_INVALIDATED})
RATE_LIMIT_CODES = frozenset({60007, 60011, 60018, 60019})

_TABLE: dict[ErrorClass, frozenset[int]] = {
    ErrorClass.INVALID: frozenset({90104, 60002, 60003, 60009, 60012, 60015}),
    ErrorClass.TOO_LATE: frozenset({90106, 90107, 90110}),
    ErrorClass.RETRYABLE: frozenset(
        {90105, 91000, 90024, 90051, 60007, 60008, 60011, 60013, 60014, 60018, 60019, 70169, 70500}
        | {CONNECTION_FAILED, TIMED_OUT, NOT_ENVELOPE, SECRET_UNAVAILABLE, STATE_UNAVAILABLE, TASK_BUSY}
    ),
    ErrorClass.AUTH: frozenset(
        {70001, 70052, 60004, 60005, 60006, 60010, 60016, 60017, 60020, 60021, 70050, 70051, 70403}
        | set(range(70002, 70021))
        | {90009, 90045}
    ),
    ErrorClass.SUPERSEDED: frozenset({SUPERSEDED}),
}
_BY_CODE: dict[int, ErrorClass] = {code: cls for cls, codes in _TABLE.items() for code in codes}
_PUSH_CONTENT = range(90001, 90100)  # push-content codes not named above are input errors


def classify(code: int, http_status: int | None = None) -> ErrorClass:
    """The class of an error code; ``http_status`` decides for -3 (5xx and 429 retry, others do not)."""
    if code == HTTP_STATUS:
        retry = http_status is not None and (http_status >= 500 or http_status == 429)
        return ErrorClass.RETRYABLE if retry else ErrorClass.UNKNOWN
    if code in _BY_CODE:
        return _BY_CODE[code]
    if code in _PUSH_CONTENT:
        return ErrorClass.INVALID
    return ErrorClass.UNKNOWN


# What a code means, for people reading an error (API.md §1.4-1.5, §1.10, §2.4); classify() decides what happens.
_MEANINGS: dict[int, str] = {
    CONNECTION_FAILED: "connection failed or dropped",
    TIMED_OUT: "timed out",
    HTTP_STATUS: "HTTP status other than 200",
    NOT_ENVELOPE: "the response is not the IM JSON envelope",
    SECRET_UNAVAILABLE: "the secret could not be fetched",
    STATE_UNAVAILABLE: "the state store could not be reached",
    SUPERSEDED: "superseded: a newer change was applied",
    TASK_BUSY: "another modification of the task held its lease",
    60002: "HTTP parse error: check the URL", 60003: "request JSON parse error",
    60004: "identifier or signature error", 60005: "identifier or signature error", 60006: "SDKAppID invalid",
    60007: "REST API call frequency exceeds the limit", 60008: "service request timed out",
    60009: "requested resource error: check the URL", 60010: "needs an App admin identifier",
    60011: "SDKAppID request frequency over the limit", 60012: "sdkappid missing from the URL",
    60016: "SDKAppID disabled", 60017: "request disabled", 60018: "requests too frequent",
    60019: "requests too frequent", 60020: "package expired or not purchased", 60021: "caller IP not allowed",
    SIG_EXPIRED: "UserSig expired", 70002: "UserSig empty", 70003: "UserSig check failed",
    70005: "UserSig check failed", 70009: "signature check failed: the key does not belong to this SDKAppID",
    70013: "identifier differs from the UserSig's", 70014: "SDKAppID differs from the UserSig's",
    70016: "key not found: check that the SDKAppID matches the region",
    70020: "SDKAppID not found: check the SDKAppID and the region", SIG_INVALIDATED: "UserSig invalidated",
    70403: "needs an App admin", 70169: "internal timeout", 70500: "internal error",
    90009: "needs App admin permission", 90045: "push feature not enabled",
    INVALID_PARAMETERS: "invalid request parameters (e.g. an unknown TaskID or a wrong Type)",
    90105: "internal error", 90106: "task already dispatched", 90107: "task dispatching",
    SCHED_TIME_PASSED: "invalid scheduled time (e.g. already passed)", 91000: "internal service error",
}


def meaning(code: int) -> str:
    """What ``code`` means, or its class when the table does not know it."""
    return _MEANINGS.get(code) or f"{classify(code)} error"
