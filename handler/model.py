"""The inbound modification (DESIGN "The modification"): its shape, its rules, and payload splitting.

Everything a user may mistype is refused here, before the API is called, with the API's own codes
(90104 invalid, 90110 time passed) and a reason naming each field, so routing is the same for local
and remote failures. pydantic checks the shape; the rules the API documents for ``Content`` live in
small private models validated with the task's ``Type`` as context.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from handler.compat import UTC
from handler.im.codes import INVALID_PARAMETERS, SCHED_TIME_PASSED

LOCAL_INVALID: Final = INVALID_PARAMETERS
LOCAL_TOO_LATE: Final = SCHED_TIME_PASSED

ORDERED_FIELDS: Final = ("SchedAt", "Content")  # each ordered by its own issue time
TASK_ID_MAX: Final = 2**63 - 1
MSG_RANDOM_MAX: Final = 2**32 - 1
TO_ACCOUNT_MAX: Final = 500
TAGS_MAX: Final = 10
TAG_MAX_BYTES: Final = 50
SDKAPPID_MISMATCH: Final = "{got} does not match the configured SDKAppID {expected}"
ECHO_MAX: Final = 60  # echoed input is capped so a huge value never lands in a reason or a log

API_TIME: Final = "%Y-%m-%d %H:%M:%S"
_API_FORM = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
_ISO_FORM = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,][0-9]+)?)?"
    r"(Z|([+-])([0-9]{2}):?([0-9]{2}))?"
)
_DIGITS = re.compile(r"[0-9]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,59}")
_PASSED = "sched_time_passed"
_SURROGATE = re.compile("[\ud800-\udfff]")
ISSUED_AHEAD_MAX: Final = timedelta(minutes=5)  # producer clock skew allowed; a later IssuedAt would pin the task


class _NotJson:
    def __repr__(self) -> str:
        return "NOT_JSON"


NOT_JSON: Final = _NotJson()  # Item.parsed when the text was not JSON


class LocalRefusal(Exception):
    """A modification refused before sending; ``code`` is 90104, or 90110 when only the time is past."""

    def __init__(self, code: int, errors: Sequence[Mapping[str, str]]) -> None:
        self.code = code
        self.errors: list[dict[str, str]] = [dict(e) for e in errors]
        self.reason = "; ".join(f"{e['field']}: {e['message']}" for e in self.errors)
        super().__init__(self.reason)

    @classmethod
    def single(cls, field: str, message: str, code: int = LOCAL_INVALID) -> LocalRefusal:
        return cls(code, [{"field": field, "message": message}])


# --- echoing input -----------------------------------------------------------------------------


def _show(value: object) -> str:
    """A short, JSON-flavoured description of an input value for a reason."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int) and value.bit_length() > 190:
        return "a very large number"
    if isinstance(value, int | float):
        return _cap(repr(value))
    if isinstance(value, str):
        return "'" + _cap(value) + "'"
    return _kind(value)


def _kind(value: object) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "a boolean"), ((int, float), "a number"), (str, "a string"),
        (list, "an array"), (dict, "an object"),
    ]
    if value is None:
        return "null"
    return next((name for cls, name in kinds if isinstance(value, cls)), type(value).__name__)


def _cap(text: str) -> str:
    """At most ECHO_MAX characters, lone surrogates (valid JSON escapes such as ``"\\udcff"``) shown escaped:
    a reason must encode as UTF-8 wherever it goes (pydantic's error rendering, a log, a file)."""
    text = text if len(text) <= ECHO_MAX else text[: ECHO_MAX - 1] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if _SURROGATE.search(text) else text


# --- SchedAt -------------------------------------------------------------------------------------


def parse_sched_at(text: str) -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) or ISO 8601 (naive = UTC) to an aware UTC time, whole seconds."""
    if api := _API_FORM.fullmatch(text):
        return _build(text, [int(g) for g in api.groups()], UTC)
    iso = _ISO_FORM.fullmatch(text)
    if iso is None:
        raise PydanticCustomError(
            "sched_at_format",
            "expected 'YYYY-MM-DD HH:MM:SS' (UTC) or ISO 8601 such as '2030-06-15T22:00:00+08:00', got {got}",
            {"got": _show(text)},
        )
    parts = [int(g or 0) for g in iso.groups()[:6]]  # seconds may be left out
    return _build(text, parts, _offset(iso))


def _offset(iso: re.Match[str]) -> timezone:
    sign, hours, minutes = iso.group(8, 9, 10)
    if sign is None:
        return UTC  # "Z", or naive: the API's own zone
    if int(hours) > 23 or int(minutes) > 59:
        raise _bad_time(iso.string, "the UTC offset is out of range")
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def _build(text: str, parts: list[int], tz: timezone) -> datetime:
    try:
        year, month, day, hour, minute, second = parts
        return datetime(year, month, day, hour, minute, second, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _bad_time(text, str(exc)) from exc


def _bad_time(text: str, why: str) -> PydanticCustomError:
    return PydanticCustomError(
        "sched_at_value", "{got} is not a valid date and time ({why})", {"got": _show(text), "why": why}
    )


def parse_issued_at(text: str) -> datetime:
    """``IssuedAt``: ISO 8601 with a UTC offset (or ``Z``), milliseconds kept; a time without one is refused,
    since the producer's zone cannot be guessed and a wrong guess reorders changes by hours."""
    iso = _ISO_FORM.fullmatch(text)
    if iso is None or iso.group(7) is None:
        raise PydanticCustomError(
            "issued_at_format", "expected ISO 8601 with a UTC offset such as '2030-06-01T08:00:00.250Z', got {got}",
            {"got": _show(text)},
        )
    parts = [int(g or 0) for g in iso.groups()[:6]]
    when = _build(text, parts, _offset(iso))
    return when.replace(microsecond=_millis(text) * 1000)


def _millis(text: str) -> int:
    fraction = re.search(r"[.,]([0-9]+)", text)
    return int((fraction.group(1) + "00")[:3]) if fraction else 0


def format_issued_at(when: datetime) -> str:
    """An issue time as DESIGN writes it: ISO 8601 UTC with milliseconds."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


# --- the modification ----------------------------------------------------------------------------


def _task_id(value: object) -> object:
    """A digit string becomes an int; anything else that is not a plain int is refused by name."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        if len(value.lstrip("0")) > len(str(TASK_ID_MAX)):
            raise PydanticCustomError("task_id_range", "must be at most {max}, got {got}",
                                      {"max": TASK_ID_MAX, "got": _show(value)})
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError(
            "task_id_type", "expected a positive integer or a string of digits, got {got}",
            {"got": _show(value)},
        )
    return value


class Modification(BaseModel):
    """One modification as ``modify_sched_task`` takes it, without the credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    TaskID: Annotated[int, Field(gt=0, le=TASK_ID_MAX)]
    Type: Literal["All", "Tag", "User"]
    SchedAt: str | None = None
    Content: dict[str, Any] | None = None
    Sdkappid: int | None = None
    IssuedAt: str | None = None  # orders modifications (DESIGN "Order"); never sent to the API

    _validate_task_id = field_validator("TaskID", mode="before")(_task_id)

    @field_validator("SchedAt")
    @classmethod
    def _normalise_sched_at(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        when = parse_sched_at(value)
        now = _context(info).get("now")
        if isinstance(now, datetime) and when <= _aware(now):
            raise PydanticCustomError(_PASSED, "{when} is not in the future",
                                      {"when": when.strftime(API_TIME)})
        return when.strftime(API_TIME)

    @field_validator("IssuedAt")
    @classmethod
    def _normalise_issued_at(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        when = parse_issued_at(value)
        now = _context(info).get("now")
        if isinstance(now, datetime) and when > _aware(now) + ISSUED_AHEAD_MAX:
            raise PydanticCustomError("issued_at_future", "{when} is more than {n} minutes in the future",
                                      {"when": format_issued_at(when), "n": ISSUED_AHEAD_MAX.seconds // 60})
        return format_issued_at(when)

    @field_validator("Sdkappid")
    @classmethod
    def _same_sdkappid(cls, value: int | None, info: ValidationInfo) -> int | None:
        expected = _context(info).get("sdkappid")
        if value is not None and expected is not None and value != expected:
            raise PydanticCustomError(
                "sdkappid_mismatch", SDKAPPID_MISMATCH,
                {"got": _show(value), "expected": expected},
            )
        return value

    @property
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
            out["Content"] = copy.deepcopy(self.Content)
        return out

    def summary(self) -> dict[str, Any]:
        """The normalised request for logs and dead letters (no Sdkappid)."""
        out = self.body(0)
        del out["Sdkappid"]
        if self.IssuedAt is not None:
            out["IssuedAt"] = self.IssuedAt
        return out


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _context(info: ValidationInfo) -> dict[str, Any]:
    return info.context if isinstance(info.context, dict) else {}


# --- Content rules (API.md §1.9) ----------------------------------------------------------------


def _tag_bytes(tag: str) -> str:
    if len(tag.encode("utf-8", "surrogatepass")) > TAG_MAX_BYTES:
        raise PydanticCustomError("tag_too_long", "tag is longer than {n} UTF-8 bytes", {"n": TAG_MAX_BYTES})
    return tag


_Tag = Annotated[str, StringConstraints(min_length=1), AfterValidator(_tag_bytes)]
_Tags = Annotated[list[_Tag], Field(min_length=1, max_length=TAGS_MAX)]
_Attrs = Annotated[dict[str, Any], Field(min_length=1)]
_TAG_KEYS = ("TagsAnd", "TagsOr", "TagsNot")
_ATTR_KEYS = ("AttrsAnd", "AttrsOr")


class _Condition(BaseModel):
    """Unknown keys are refused: a misspelt condition would widen the audience of a push."""

    model_config = ConfigDict(extra="forbid", strict=True)

    TagsAnd: _Tags = []
    TagsOr: _Tags = []
    TagsNot: _Tags = []
    AttrsAnd: _Attrs = {}
    AttrsOr: _Attrs = {}


class _OfflinePushInfo(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    Title: str = ""
    Desc: str = ""
    Ext: str = ""
    PushFlag: Annotated[int, Field(ge=0, le=1)] = 0


_Account = Annotated[str, StringConstraints(min_length=1)]


def _only_for(wanted: str, info: ValidationInfo) -> None:
    kind = _context(info).get("type")
    if kind is not None and kind != wanted:
        raise PydanticCustomError("wrong_type", "only valid for Type {wanted}", {"wanted": wanted})


class _Content(BaseModel):
    """The known parts of ``Content``; unknown keys pass through to the API unchecked."""

    model_config = ConfigDict(extra="allow", strict=True)

    To_Account: Annotated[list[_Account], Field(min_length=1, max_length=TO_ACCOUNT_MAX)] = []
    Condition: _Condition | None = None  # null is refused by the validators below
    OfflinePushInfo: _OfflinePushInfo | None = None
    From_Account: str = ""
    MsgRandom: Annotated[int, Field(ge=0, le=MSG_RANDOM_MAX)] = 0

    @field_validator("To_Account", mode="before")
    @classmethod
    def _to_account_for_user(cls, value: object, info: ValidationInfo) -> object:
        _only_for("User", info)
        return value

    @field_validator("Condition", mode="before")
    @classmethod
    def _condition_for_tag(cls, value: object, info: ValidationInfo) -> object:
        _only_for("Tag", info)
        return _not_null(value)

    @field_validator("OfflinePushInfo", mode="before")
    @classmethod
    def _push_info_not_null(cls, value: object) -> object:
        return _not_null(value)


def _not_null(value: object) -> object:
    if value is None:
        raise PydanticCustomError("null_object", "expected an object, got null")
    return value


def _condition_rules(content: dict[Any, Any], kind: str | None) -> list[_Problem]:
    """The rules across Condition's keys (API.md §1.9: 90039, 90022), each a problem of its own."""
    cond = content.get("Condition")
    if not isinstance(cond, dict) or kind not in (None, "Tag"):
        return []
    tags, attrs = [k for k in _TAG_KEYS if k in cond], [k for k in _ATTR_KEYS if k in cond]
    messages = []
    if not cond:
        messages.append(f"needs at least one of {_CONDITION_FIELDS} (an empty one would push to everyone)")
    if attrs and not tags:
        # Type Tag is a tag push: attributes alone would be another push kind (API.md §7), and the server
        # refuses it; saying so here keeps the request from being sent at all.
        messages.append(f"Type Tag needs TagsAnd, TagsOr or TagsNot; {', '.join(attrs)} alone is not a tag push")
    if tags and attrs:
        messages.append(f"tag conditions ({', '.join(tags)}) and attribute conditions ({', '.join(attrs)}) "
                        "cannot be combined")
    both = sorted(_strings(cond.get("TagsOr")) & _strings(cond.get("TagsAnd")))
    if both:
        messages.append(f"tag {_show(both[0])} is in both TagsOr and TagsAnd")
    return [("Content.Condition", message, LOCAL_INVALID) for message in messages]


def _strings(value: object) -> set[str]:
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


# --- validate ------------------------------------------------------------------------------------

_FIELDS = ", ".join(Modification.model_fields)
_CONDITION_FIELDS = ", ".join(_Condition.model_fields)
_Problem = tuple[str, str, int]  # field, message, code


def validate(obj: object, *, sdkappid: int | None, now: datetime) -> Modification:
    """The modification ``obj`` carries, or ``LocalRefusal`` listing every problem found.

    ``sdkappid`` None means not known yet: the Sdkappid equality check is then left to the caller.
    """
    if obj is NOT_JSON:
        raise LocalRefusal.single("modification", "the payload is not JSON")
    if not isinstance(obj, dict):
        raise LocalRefusal.single("modification", f"expected a JSON object, got {_kind(obj)}")
    if set(obj) == {"modifications"}:
        got = _show(obj["modifications"])
        raise LocalRefusal.single("modifications", f"expected a non-empty array of modifications, got {got}")
    kind = obj["Type"] if _known_type(obj) else None
    context: dict[str, Any] = {"now": now, "sdkappid": sdkappid, "type": kind}
    problems, result = _check(Modification, obj, context, ())
    content = obj.get("Content")
    if isinstance(content, dict):
        problems += _check(_Content, content, context, ("Content",))[0]
        problems += _condition_rules(content, kind)
    if obj.get("SchedAt") is None and obj.get("Content") is None:
        problems.append(("modification", "needs SchedAt or Content (nothing to modify)", LOCAL_INVALID))
    if problems or not isinstance(result, Modification):
        raise _refusal(problems)
    return result


def _known_type(obj: dict[Any, Any]) -> bool:
    return isinstance(obj.get("Type"), str) and obj["Type"] in ("All", "Tag", "User")


def _check(model: type[BaseModel], obj: dict[Any, Any], context: dict[str, Any],
           prefix: tuple[str, ...]) -> tuple[list[_Problem], BaseModel | None]:
    try:
        return [], model.model_validate(obj, context=context)
    except ValidationError as exc:
        return [_problem(err, prefix) for err in exc.errors(include_url=False)], None


def _refusal(problems: list[_Problem]) -> LocalRefusal:
    code = LOCAL_TOO_LATE if problems and all(p[2] == LOCAL_TOO_LATE for p in problems) else LOCAL_INVALID
    return LocalRefusal(code, [{"field": field, "message": message} for field, message, _ in problems])


def _problem(err: ErrorDetails, prefix: tuple[str, ...]) -> _Problem:
    loc = prefix + tuple(err["loc"])
    code = LOCAL_TOO_LATE if err["type"] == _PASSED else LOCAL_INVALID
    return _path(loc), _message(err, loc), code


def _path(loc: tuple[str | int, ...]) -> str:
    """``Content.To_Account[3]``; a key that is not a plain name is quoted and capped: ``["a b"]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _NAME.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(_cap(part), ensure_ascii=False)}]"
    return out


_TYPE_NAMES: Final = {
    "int_type": "an integer", "string_type": "a string", "dict_type": "an object", "model_type": "an object",
    "model_attributes_type": "an object", "list_type": "an array", "bool_type": "a boolean",
}


def _message(err: ErrorDetails, loc: tuple[str | int, ...]) -> str:
    kind, ctx, got = err["type"], err.get("ctx", {}), _show(err["input"])
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {got}"
    if kind == "extra_forbidden":
        allowed = _CONDITION_FIELDS if loc[:2] == ("Content", "Condition") else _FIELDS
        return f"unknown field (expected one of {allowed})"
    return _bound_message(kind, ctx, got) or _first_lower(err["msg"])


def _bound_message(kind: str, ctx: dict[str, Any], got: str) -> str | None:
    messages = {
        "missing": "required",
        "literal_error": f"expected {ctx.get('expected')}, got {got}",
        "greater_than": f"must be greater than {ctx.get('gt')}, got {got}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}, got {got}",
        "less_than_equal": f"must be at most {ctx.get('le')}, got {got}",
        "string_too_short": "must not be empty",
        "too_short": "must not be empty" if ctx.get("min_length") == 1
        else f"needs at least {ctx.get('min_length')} entries, got {ctx.get('actual_length')}",
        "too_long": f"has {ctx.get('actual_length')} entries, at most {ctx.get('max_length')} allowed",
    }
    return messages.get(kind)


def _first_lower(text: str) -> str:
    return text[:1].lower() + text[1:]


# --- payload splitting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One modification's text as received (or its own JSON, when a payload carried several)."""

    raw: str
    parsed: object  # the JSON value, or NOT_JSON


def split_payload(payload: str | bytes | object) -> list[Item]:
    """One item per modification in a payload: a single one, an array, or ``{"modifications": [...]}``.

    Text and bytes are parsed; anything else is taken as an already parsed JSON value. An empty
    array stays one item, so it is refused loudly rather than dropped.
    """
    if isinstance(payload, bytes | bytearray):
        data = bytes(payload)
        try:
            payload = data.decode("utf-8")
        except UnicodeDecodeError:
            return [Item(data.decode("utf-8", errors="replace"), NOT_JSON)]
    if isinstance(payload, str):
        parsed = _loads(payload)
        return _split(parsed) or [Item(payload, parsed)]
    return _split(payload) or [Item(dump(payload), payload)]


def _split(parsed: object) -> list[Item]:
    """The items of a multi-modification payload, or [] when the payload is a single item."""
    if isinstance(parsed, dict) and set(parsed) == {"modifications"}:
        parsed = parsed["modifications"]
        if not isinstance(parsed, list):
            return []
    if isinstance(parsed, list) and parsed:
        return [Item(dump(element), element) for element in parsed]
    return []


def _loads(text: str) -> object:
    try:
        return json.loads(text.removeprefix("\ufeff"), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return NOT_JSON


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def dump(value: object) -> str:
    """Compact JSON, as each modification of a multi-modification payload is kept in ``raw``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
