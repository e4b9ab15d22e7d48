"""The modification itself (DESIGN "The modification"): its fields, one plain rule per field run in the fields'
order so that every problem is listed once, and ``validate``, which returns the ``Modification`` or refuses it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, Final, NamedTuple

from handler.model.checks import (
    _UNREADABLE,
    _aware,
    _Context,
    _expect,
    _Problems,
    _unreadable_key,
)
from handler.model.content import (
    _condition_rules,
    _content_parts,
)
from handler.model.payload import NotJson
from handler.model.refusal import (
    LOCAL_INVALID,
    LOCAL_TOO_LATE,
    Invalid,
    LocalRefusal,
    _has_surrogate,
    _kind,
    _refusal,
    _show,
)
from handler.model.times import (
    API_TIME,
    ISSUED_AHEAD_MAX,
    format_issued_at,
    parse_issued_at,
    parse_sched_at,
)

ORDERED_FIELDS: Final = ("SchedAt", "Content")  # each ordered by its own issue time
TASK_ID_MAX: Final = 2**63 - 1
SDKAPPID_MISMATCH: Final = "{got} does not match the configured SDKAppID {expected}"
_DIGITS = r"[0-9]+"
TYPES: Final = ("All", "Tag", "User")


class _ModificationFields(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    TaskID: int
    Type: str  # one of TYPES
    SchedAt: str | None = None
    Content: dict[str, Any] | None = None
    Sdkappid: int | None = None
    IssuedAt: str | None = None  # orders modifications (DESIGN "Order"); never sent to the API


class Modification(_ModificationFields):
    """One modification as ``modify_sched_task`` takes it, without the credentials; built by ``validate``.

    A subclass of the NamedTuple with an instance dict (as ``Stamp``), so that ``issued_at`` can be cached."""

    @cached_property  # validate() fills it in with the time its rule parsed: IssuedAt is parsed once
    def issued_at(self) -> datetime | None:
        """``IssuedAt`` as an aware UTC time (None when the producer did not say)."""
        return parse_issued_at(self.IssuedAt) if self.IssuedAt else None

    @property
    def fields(self) -> tuple[str, ...]:
        """The ordered fields this modification sets (DESIGN "Order"): ``SchedAt``, ``Content``."""
        return tuple(name for name in ORDERED_FIELDS if getattr(self, name) is not None)

    def body(self, sdkappid: int, only: Sequence[str] = ORDERED_FIELDS) -> dict[str, Any]:
        """The ``modify_sched_task`` request body, with only the ordered fields named in ``only``."""
        out: dict[str, Any] = {"Sdkappid": sdkappid, "TaskID": self.TaskID, "Type": self.Type}
        if self.SchedAt is not None and "SchedAt" in only:
            out["SchedAt"] = self.SchedAt
        if self.Content is not None and "Content" in only:
            out["Content"] = _copied(self.Content)
        return out

    def summary(self) -> dict[str, Any]:
        """The normalised request for logs and dead letters (no Sdkappid)."""
        out = self.body(0)
        del out["Sdkappid"]
        if self.IssuedAt is not None:
            out["IssuedAt"] = self.IssuedAt
        return out


def _copied(value: Any) -> Any:
    """A deep copy of a JSON value (objects and arrays all the way down): a third of what ``copy.deepcopy`` costs,
    twice per warm modification (the request body and the summary; issue 29)."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


FIELD_NAMES: Final = Modification._fields
_REQUIRED: Final = ("TaskID", "Type")
_FIELDS = ", ".join(FIELD_NAMES)


def _task_id(value: object, _: _Context) -> int:
    """A digit string becomes an int; anything else that is not a plain int is refused by name."""
    if isinstance(value, str) and re.fullmatch(_DIGITS, value):
        if len(value.lstrip("0")) > len(str(TASK_ID_MAX)):
            raise Invalid(f"must be at most {TASK_ID_MAX}, got {_show(value)}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"expected a positive integer or a string of digits, got {_show(value)}")
    if value <= 0:
        raise Invalid(f"must be greater than 0, got {_show(value)}")
    if value > TASK_ID_MAX:
        raise Invalid(f"must be at most {TASK_ID_MAX}, got {_show(value)}")
    return value


def _type(value: object, _: _Context) -> str:
    if isinstance(value, str) and value in TYPES:
        return value
    if isinstance(value, str) and _has_surrogate(value):
        raise Invalid(_UNREADABLE)
    raise Invalid(f"expected 'All', 'Tag' or 'User', got {_show(value)}")


def _sched_at(value: object, context: _Context) -> str:
    when = parse_sched_at(_expect(value, str, "a string"))
    if when <= _aware(context.now):
        raise Invalid(f"{when.strftime(API_TIME)} is not in the future", LOCAL_TOO_LATE)
    return when.strftime(API_TIME)


def _issued_at(value: object, context: _Context) -> str:
    when = parse_issued_at(_expect(value, str, "a string"))
    if when > _aware(context.now) + ISSUED_AHEAD_MAX:
        raise Invalid(f"{format_issued_at(when)} is more than {ISSUED_AHEAD_MAX.seconds // 60} minutes in the future")
    context.issued_at = when
    return format_issued_at(when)


def _content(value: object, _: _Context) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"expected an object, got {_show(value)}")
    return dict(value)  # its own top level, as the request keeps it


def _sdkappid(value: object, context: _Context) -> int:
    value = _expect(value, int, "an integer")
    if context.sdkappid is not None and value != context.sdkappid:
        raise Invalid(SDKAPPID_MISMATCH.format(got=_show(value), expected=context.sdkappid))
    return value


_Rule = Callable[[object, _Context], object]
# In FIELD_NAMES' order, which is the order problems are listed in. null means "not given" for the optional ones.
_RULES: Final[dict[str, _Rule]] = {
    "TaskID": _task_id, "Type": _type, "SchedAt": _sched_at, "Content": _content, "Sdkappid": _sdkappid,
    "IssuedAt": _issued_at,
}


def _fields(obj: dict[Any, Any], context: _Context, problems: _Problems) -> dict[str, Any] | None:
    """The top-level fields normalised, or None when any is wrong (each problem recorded)."""
    if _unreadable_key(obj):
        problems.add((), _UNREADABLE)
        return None
    before = len(problems)
    values: dict[str, Any] = {}
    for name, rule in _RULES.items():
        if name not in obj:
            if name in _REQUIRED:
                problems.add((name,), "required")
        elif obj[name] is not None or name in _REQUIRED:
            values[name] = problems.run((name,), rule, obj[name], context)
    for key in obj:
        if key not in _RULES:
            problems.add((key,), f"unknown field (expected one of {_FIELDS})")
    return values if len(problems) == before else None


def validate(obj: object, *, sdkappid: int | None, now: datetime) -> Modification:
    """The modification ``obj`` carries, or ``LocalRefusal`` listing every problem found.

    ``sdkappid`` None means not known yet: the Sdkappid equality check is then left to the caller.
    """
    if isinstance(obj, NotJson):
        raise LocalRefusal.single("modification", obj.reason)
    if not isinstance(obj, dict):
        raise LocalRefusal.single("modification", f"expected a JSON object, got {_kind(obj)}")
    if set(obj) == {"modifications"}:
        got = _show(obj["modifications"])
        raise LocalRefusal.single("modifications", f"expected a non-empty array of modifications, got {got}")
    kind = obj["Type"] if _known_type(obj) else None
    context = _Context(now, sdkappid, kind)
    problems = _Problems()
    values = _fields(obj, context, problems)
    content = obj.get("Content")
    if isinstance(content, dict):
        _content_parts(content, context, problems)
        problems += _condition_rules(content, kind)
    if obj.get("SchedAt") is None and obj.get("Content") is None:
        problems.append(("modification", "needs SchedAt or Content (nothing to modify)", LOCAL_INVALID))
    if problems or values is None:
        raise _refusal(problems)
    modification = Modification(**values)
    modification.__dict__["issued_at"] = context.issued_at  # the cached_property's own slot: not parsed again
    return modification


def _known_type(obj: dict[Any, Any]) -> bool:
    return isinstance(obj.get("Type"), str) and obj["Type"] in TYPES
