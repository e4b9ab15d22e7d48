"""The inbound modification (DESIGN "The modification"): its shape, its rules, and payload splitting.

Everything a user may mistype is refused here, before the API is called, with the API's own codes
(90104 invalid, 90110 time passed) and a reason naming each field, so routing is the same for local
and remote failures. The rules are plain functions, one per field, run in the fields' order so that every
problem is listed once; the rules the API documents for ``Content`` depend on the task's ``Type``.

Plain Python rather than a validation library: this runs at every cold start, where pydantic cost ~60 ms to
import and build the models (docs/benchmarks.md), and the reasons are ours to word anyway.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final, NamedTuple, TypeVar

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
# Patterns as text: ``re`` compiles each on its first use and keeps it, so a cold start pays only for those its
# first modification needs (compiling them all at import cost about 0.6 ms).
_API_FORM = r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})"
_ISO_FORM = (
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,][0-9]+)?)?"
    r"(Z|([+-])([0-9]{2}):?([0-9]{2}))?"
)
_DIGITS = r"[0-9]+"
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,59}"
TYPES: Final = ("All", "Tag", "User")
_SURROGATE = "[\ud800-\udfff]"
ISSUED_AHEAD_MAX: Final = timedelta(minutes=5)  # producer clock skew allowed; a later IssuedAt would pin the task


class _NotJson:
    def __repr__(self) -> str:
        return "NOT_JSON"


NOT_JSON: Final = _NotJson()  # Item.parsed when the text was not JSON


class Invalid(ValueError):
    """One field's problem, worded for a reason; ``code`` is 90110 only for a time already past."""

    def __init__(self, message: str, code: int = LOCAL_INVALID) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


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
    a reason must encode as UTF-8 wherever it goes (a log, a file, an HTTP answer)."""
    text = text if len(text) <= ECHO_MAX else text[: ECHO_MAX - 1] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if _has_surrogate(text) else text


def _has_surrogate(text: str) -> bool:
    """A lone surrogate (a valid JSON escape such as ``"\\udcff"``, which no UTF-8 encoder takes)."""
    return not text.isascii() and re.search(_SURROGATE, text) is not None


# --- SchedAt -------------------------------------------------------------------------------------


def parse_sched_at(text: str) -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) or ISO 8601 (naive = UTC) to an aware UTC time, whole seconds."""
    if api := re.fullmatch(_API_FORM, text):
        return _build(text, [int(g) for g in api.groups()], UTC)
    iso = re.fullmatch(_ISO_FORM, text)
    if iso is None:
        raise Invalid("expected 'YYYY-MM-DD HH:MM:SS' (UTC) or ISO 8601 such as '2030-06-15T22:00:00+08:00', "
                      f"got {_show(text)}")
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


def _bad_time(text: str, why: str) -> Invalid:
    return Invalid(f"{_show(text)} is not a valid date and time ({why})")


def parse_issued_at(text: str) -> datetime:
    """``IssuedAt``: ISO 8601 with a UTC offset (or ``Z``), milliseconds kept; a time without one is refused,
    since the producer's zone cannot be guessed and a wrong guess reorders changes by hours."""
    iso = re.fullmatch(_ISO_FORM, text)
    if iso is None or iso.group(7) is None:
        raise Invalid(f"expected ISO 8601 with a UTC offset such as '2030-06-01T08:00:00.250Z', got {_show(text)}")
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

_T = TypeVar("_T")


@dataclass(frozen=True)
class Modification:
    """One modification as ``modify_sched_task`` takes it, without the credentials; built by ``validate``."""

    TaskID: int
    Type: str  # one of TYPES
    SchedAt: str | None = None
    Content: dict[str, Any] | None = None
    Sdkappid: int | None = None
    IssuedAt: str | None = None  # orders modifications (DESIGN "Order"); never sent to the API

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


FIELD_NAMES: Final = tuple(f.name for f in dataclasses.fields(Modification))
_REQUIRED: Final = ("TaskID", "Type")
_FIELDS = ", ".join(FIELD_NAMES)
# A string the API could not read back (a lone surrogate) in a key, a name list or the Type.
_UNREADABLE: Final = "input should be a valid string, unable to parse raw data as a unicode string"


class _Context:
    """What the rules compare with (a plain class: a dataclass costs ~0.4 ms of every cold start to build)."""

    __slots__ = ("now", "sdkappid", "kind")

    def __init__(self, now: datetime, sdkappid: int | None, kind: str | None) -> None:
        self.now = now
        self.sdkappid = sdkappid  # None: not known yet, the equality check is the caller's
        self.kind = kind  # the task's Type when it is valid, for the rules that depend on it


def _expect(value: object, kind: type[_T], name: str) -> _T:
    """Strict types: JSON's true is not an integer, 5.0 is not an integer, "5" is not a number."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Invalid(f"expected {name}, got {_show(value)}")
    return value


def _int_in(value: object, low: int, high: int) -> int:
    value = _expect(value, int, "an integer")
    if value < low:
        raise Invalid(f"must be at least {low}, got {_show(value)}")
    if value > high:
        raise Invalid(f"must be at most {high}, got {_show(value)}")
    return value


def _name(value: object) -> str:
    """A non-empty string the API can read (an account, a tag)."""
    value = _expect(value, str, "a string")
    if _has_surrogate(value):
        raise Invalid(_UNREADABLE)
    if not value:
        raise Invalid("must not be empty")
    return value


def _text(value: object) -> str:
    return _expect(value, str, "a string")


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


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


# --- checking an object's fields -----------------------------------------------------------------

_Problem = tuple[str, str, int]  # field, message, code
_Loc = tuple[str | int, ...]


class _Problems(list[_Problem]):
    def add(self, loc: _Loc, message: str, code: int = LOCAL_INVALID) -> None:
        self.append((_path(loc) or "modification", message, code))

    def run(self, loc: _Loc, rule: Callable[..., object], *args: object) -> object:
        """``rule(*args)``, or None with its problem recorded."""
        try:
            return rule(*args)
        except Invalid as exc:
            self.add(loc, exc.message, exc.code)
            return None


def _unreadable_key(obj: dict[Any, Any]) -> bool:
    return any(isinstance(key, str) and _has_surrogate(key) for key in obj)


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


# --- Content rules (API.md §1.9) ----------------------------------------------------------------

_TAG_KEYS = ("TagsAnd", "TagsOr", "TagsNot")
_ATTR_KEYS = ("AttrsAnd", "AttrsOr")
_CONDITION_FIELDS = ", ".join(_TAG_KEYS + _ATTR_KEYS)


def _tag(value: object) -> str:
    tag = _name(value)
    if len(tag.encode("utf-8", "surrogatepass")) > TAG_MAX_BYTES:
        raise Invalid(f"tag is longer than {TAG_MAX_BYTES} UTF-8 bytes")
    return tag


def _names(value: object, loc: _Loc, problems: _Problems, most: int, each: Callable[[object], str]) -> None:
    """A list of 1 to ``most`` names; a list too long is refused as a whole, without looking inside."""
    if not isinstance(value, list):
        problems.add(loc, f"expected an array, got {_show(value)}")
    elif len(value) > most:
        problems.add(loc, f"has {len(value)} entries, at most {most} allowed")
    elif not value:
        problems.add(loc, "must not be empty")
    for index, item in enumerate(value if isinstance(value, list) and len(value) <= most else []):
        problems.run((*loc, index), each, item)


def _object(value: object, loc: _Loc, problems: _Problems) -> dict[Any, Any] | None:
    """``value`` when it is an object whose keys can be read, else None with the problem recorded (null is refused
    too: it would clear nothing)."""
    if value is None:
        problems.add(loc, "expected an object, got null")
    elif not isinstance(value, dict):
        problems.add(loc, f"expected an object, got {_show(value)}")
    elif _unreadable_key(value):
        problems.add(loc, _UNREADABLE)
    else:
        return value
    return None


def _only_for(wanted: str, loc: _Loc, context: _Context, problems: _Problems) -> bool:
    if context.kind is not None and context.kind != wanted:
        problems.add(loc, f"only valid for Type {wanted}")
        return False
    return True


def _condition(value: object, loc: _Loc, problems: _Problems) -> None:
    """Unknown keys are refused: a misspelt condition would widen the audience of a push."""
    cond = _object(value, loc, problems)
    if cond is None:
        return
    for key in _TAG_KEYS:
        if key in cond:
            _names(cond[key], (*loc, key), problems, TAGS_MAX, _tag)
    for key in _ATTR_KEYS:
        if key in cond:
            attrs = cond[key]
            if not isinstance(attrs, dict):
                problems.add((*loc, key), f"expected an object, got {_show(attrs)}")
            elif not attrs:
                problems.add((*loc, key), "must not be empty")
    for key in cond:
        if key not in _TAG_KEYS + _ATTR_KEYS:
            problems.add((*loc, key), f"unknown field (expected one of {_CONDITION_FIELDS})")


def _push_info(value: object, loc: _Loc, problems: _Problems) -> None:
    info = _object(value, loc, problems)
    if info is None:
        return
    for key in ("Title", "Desc", "Ext"):
        if key in info:
            problems.run((*loc, key), _text, info[key])
    if "PushFlag" in info:
        problems.run((*loc, "PushFlag"), _int_in, info["PushFlag"], 0, 1)


def _content_parts(content: dict[Any, Any], context: _Context, problems: _Problems) -> None:
    """The known parts of ``Content``, in this order; unknown keys pass through to the API unchecked."""
    loc: _Loc = ("Content",)
    if _object(content, loc, problems) is None:
        return
    if "To_Account" in content and _only_for("User", (*loc, "To_Account"), context, problems):
        _names(content["To_Account"], (*loc, "To_Account"), problems, TO_ACCOUNT_MAX, _name)
    if "Condition" in content and _only_for("Tag", (*loc, "Condition"), context, problems):
        _condition(content["Condition"], (*loc, "Condition"), problems)
    if "OfflinePushInfo" in content:
        _push_info(content["OfflinePushInfo"], (*loc, "OfflinePushInfo"), problems)
    if "From_Account" in content:
        problems.run((*loc, "From_Account"), _text, content["From_Account"])
    if "MsgRandom" in content:
        problems.run((*loc, "MsgRandom"), _int_in, content["MsgRandom"], 0, MSG_RANDOM_MAX)


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
    return Modification(**values)


def _known_type(obj: dict[Any, Any]) -> bool:
    return isinstance(obj.get("Type"), str) and obj["Type"] in TYPES


def _refusal(problems: list[_Problem]) -> LocalRefusal:
    code = LOCAL_TOO_LATE if problems and all(p[2] == LOCAL_TOO_LATE for p in problems) else LOCAL_INVALID
    return LocalRefusal(code, [{"field": field, "message": message} for field, message, _ in problems])


def _path(loc: _Loc) -> str:
    """``Content.To_Account[3]``; a key that is not a plain name is quoted and capped: ``["a b"]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(_NAME, part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(_cap(part), ensure_ascii=False)}]"
    return out


# --- payload splitting ---------------------------------------------------------------------------


class Item(NamedTuple):
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
