"""The rules the API documents for ``Content`` (API.md §1.9), which depend on the task's ``Type``: ``To_Account``
for User, ``Condition`` for Tag, ``OfflinePushInfo``; unknown keys pass through to the API unchecked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from handler.model.checks import _UNREADABLE, _Context, _int_in, _name, _Problems, _text, _unreadable_key
from handler.model.refusal import LOCAL_INVALID, Invalid, _Loc, _Problem, _show

MSG_RANDOM_MAX: Final = 2**32 - 1
TO_ACCOUNT_MAX: Final = 500
TAGS_MAX: Final = 10
TAG_MAX_BYTES: Final = 50
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
