"""The inbound modification (DESIGN "The modification"): its shape, its rules, and payload splitting.

Everything a user may mistype is refused here, before the API is called, with the API's own codes
(90104 invalid, 90110 time passed) and a reason naming each field, so routing is the same for local
and remote failures. By concern: ``fields`` (the Modification, one rule per field, ``validate``), ``content``
(the rules for ``Content``, which depend on ``Type``), ``times`` (SchedAt, IssuedAt), ``checks`` (the small
checks the rules are built from), ``refusal`` (a refusal and how it echoes input), ``payload`` (splitting)
and ``jsontext`` (the one bounded JSON reader).
This door names the model's public surface.

Plain Python rather than a validation library: this runs at every cold start, where pydantic cost ~60 ms to
import and build the models (docs/benchmarks.md), and the reasons are ours to word anyway.
"""

from handler.model.fields import (
    FIELD_NAMES,
    ORDERED_FIELDS,
    SDKAPPID_MISMATCH,
    TASK_ID_MAX,
    TYPES,
    Modification,
    validate,
)
from handler.model.jsontext import MAX_DEPTH, TooDeep, check_depth, loads
from handler.model.payload import NOT_JSON, TOO_DEEP, Item, NotJson, dump, split_payload
from handler.model.refusal import LOCAL_INVALID, LOCAL_TOO_LATE, Invalid, LocalRefusal
from handler.model.times import API_TIME, format_issued_at, parse_issued_at, parse_sched_at

__all__ = [
    "API_TIME", "FIELD_NAMES", "LOCAL_INVALID", "LOCAL_TOO_LATE", "MAX_DEPTH", "NOT_JSON", "ORDERED_FIELDS",
    "SDKAPPID_MISMATCH", "TASK_ID_MAX", "TOO_DEEP", "TYPES", "Invalid", "Item", "LocalRefusal", "Modification",
    "NotJson", "TooDeep", "check_depth", "dump", "format_issued_at", "loads", "parse_issued_at", "parse_sched_at",
    "split_payload", "validate",
]
