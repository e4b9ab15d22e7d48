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
