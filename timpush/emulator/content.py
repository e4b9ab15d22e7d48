"""Checks of a task's Content against its Type (API.md §1.9): recipients, tag conditions, push info."""

from __future__ import annotations

import random
from collections.abc import Mapping

from timpush.emulator import envelope as env
from timpush.emulator.validation import invalid, is_int

MAX_ACCOUNTS = 500
MAX_TAGS = 10
MAX_TAG_BYTES = 50
_MAX_RANDOM = 2**32 - 1
_TAG_KEYS = ("TagsAnd", "TagsOr", "TagsNot")
_ATTR_KEYS = ("AttrsAnd", "AttrsOr")
# The push service's own codes for tag rules (API.md §1.10), used when push_tag_codes is on.
TAG_TOO_LONG, TAG_IN_AND_OR, TOO_MANY_TAGS, TAGS_WITH_ATTRS, EMPTY_TAG = 90020, 90022, 90032, 90039, 90040


def check_content(task_type: str, content: object, push_tag_codes: bool) -> dict[str, object]:
    """A copy of ``content`` if it suits ``task_type``; unknown keys pass through untouched."""
    if not isinstance(content, dict):
        raise invalid("invalid Content: must be an object")
    _check_recipients(task_type, content, push_tag_codes)
    _check_push_info(content.get("OfflinePushInfo"))
    if "MsgRandom" in content and not _is_random(content["MsgRandom"]):
        raise invalid("invalid Content.MsgRandom: must be an integer within 0..4294967295")
    return dict(content)


def with_msg_random(content: dict[str, object], rng: random.Random) -> dict[str, object]:
    """The server fills MsgRandom when absent (the get example shows one nobody sent)."""
    if "MsgRandom" not in content:
        content["MsgRandom"] = rng.randint(0, _MAX_RANDOM)
    return content


def _is_random(value: object) -> bool:
    return is_int(value) and 0 <= value <= _MAX_RANDOM


def _check_recipients(task_type: str, content: Mapping[str, object], push_tag_codes: bool) -> None:
    if task_type != "User" and "To_Account" in content:
        raise invalid("task type and content mismatch: Content.To_Account is only for Type User")
    if task_type != "Tag" and "Condition" in content:
        raise invalid("task type and content mismatch: Content.Condition is only for Type Tag")
    if task_type == "User":
        _check_accounts(content.get("To_Account"))
    if task_type == "Tag":
        _check_condition(content.get("Condition"), push_tag_codes)


def _check_accounts(accounts: object) -> None:
    if (
        not isinstance(accounts, list)
        or not 1 <= len(accounts) <= MAX_ACCOUNTS
        or not all(isinstance(account, str) and account for account in accounts)
    ):
        raise invalid(f"invalid Content.To_Account: must be 1 to {MAX_ACCOUNTS} non-empty strings")


def _check_push_info(info: object) -> None:
    if info is None:
        return
    if not isinstance(info, dict):
        raise invalid("invalid Content.OfflinePushInfo: must be an object")
    for name in ("Title", "Desc"):
        if name in info and not isinstance(info[name], str):
            raise invalid(f"invalid Content.OfflinePushInfo.{name}: must be a string")


def _check_condition(condition: object, push_tag_codes: bool) -> None:
    if not isinstance(condition, dict) or not any(key in condition for key in _TAG_KEYS):
        raise invalid("invalid Content.Condition: Type Tag needs TagsAnd, TagsOr or TagsNot")
    if any(key in condition for key in _ATTR_KEYS):
        info = "invalid Content.Condition: tags and attributes must not be combined"
        raise _tag_error(TAGS_WITH_ATTRS, info, push_tag_codes)
    for key in _TAG_KEYS:
        if key in condition:
            _check_tags(key, condition[key], push_tag_codes)
    if set(condition.get("TagsAnd") or ()) & set(condition.get("TagsOr") or ()):
        info = "invalid Content.Condition: a tag is in both TagsAnd and TagsOr"
        raise _tag_error(TAG_IN_AND_OR, info, push_tag_codes)


def _check_tags(key: str, tags: object, push_tag_codes: bool) -> None:
    name = f"Content.Condition.{key}"
    if not isinstance(tags, list) or not tags or not all(isinstance(tag, str) for tag in tags):
        raise invalid(f"invalid {name}: must be a non-empty list of strings")
    if len(tags) > MAX_TAGS:
        raise _tag_error(TOO_MANY_TAGS, f"invalid {name}: more than {MAX_TAGS} tags", push_tag_codes)
    if not all(tags):
        raise _tag_error(EMPTY_TAG, f"invalid {name}: empty tag", push_tag_codes)
    if any(len(tag.encode("utf-8")) > MAX_TAG_BYTES for tag in tags):
        info = f"invalid {name}: a tag is longer than {MAX_TAG_BYTES} bytes"
        raise _tag_error(TAG_TOO_LONG, info, push_tag_codes)


def _tag_error(push_code: int, info: str, push_tag_codes: bool) -> env.ApiError:
    return env.ApiError(push_code if push_tag_codes else env.INVALID_PARAMS, info)
