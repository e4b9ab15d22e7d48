"""The inbound modification: what is accepted, how it is normalised, what is refused and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler.model import (
    LOCAL_INVALID,
    LOCAL_TOO_LATE,
    NOT_JSON,
    Item,
    LocalRefusal,
    Modification,
    split_payload,
    validate,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SDKAPPID = 1400000000
LATER = "2030-06-15 14:00:00"


def mod(**fields: Any) -> dict[str, Any]:
    """A valid modification with ``fields`` changed (a value of ... removes the key)."""
    base: dict[str, Any] = {"TaskID": 1234567890, "Type": "All", "SchedAt": LATER}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def refusal(obj: object, sdkappid: int | None = SDKAPPID) -> LocalRefusal:
    with pytest.raises(LocalRefusal) as caught:
        validate(obj, sdkappid=sdkappid, now=NOW)
    return caught.value


def tags(n: int) -> list[str]:
    return [f"t{i}" for i in range(n)]


# --- accepted ------------------------------------------------------------------------------------


def body(**fields: Any) -> dict[str, Any]:
    """The API body expected for ``mod(**fields)`` when nothing needs normalising."""
    return {"Sdkappid": SDKAPPID, **mod(**fields)}


def content(type_: str = "All", **parts: Any) -> dict[str, Any]:
    return mod(Type=type_, Content=parts)


def cond(**condition: Any) -> dict[str, Any]:
    return content("Tag", Condition=condition)


def push(**info: Any) -> dict[str, Any]:
    return content(OfflinePushInfo=info)


ATTRS = {"AttrsAnd": {"city": "x"}, "AttrsOr": {"l": "1"}}
PASS_THROUGH = {"DataId": "d", "OfflinePushInfo": {"PushFlag": 1, "Ext": "{}", "AndroidInfo": {"Sound": "s"}}}
ACCEPTED = [
    ("schedat-only", mod(), body()),
    ("content-only", mod(SchedAt=..., Content={"OfflinePushInfo": {"Title": "T", "Desc": "D"}}),
     body(SchedAt=..., Content={"OfflinePushInfo": {"Title": "T", "Desc": "D"}})),
    ("both", content(From_Account="administrator"), body(Content={"From_Account": "administrator"})),
    ("taskid-digit-string", mod(TaskID="0042"), body(TaskID=42)),
    ("taskid-long-zero-padded", mod(TaskID="0" * 30 + "42"), body(TaskID=42)),
    ("taskid-max", mod(TaskID=2**63 - 1), body(TaskID=2**63 - 1)),
    ("schedat-null-with-content", mod(SchedAt=None, Content={"MsgRandom": 7}),
     body(SchedAt=..., Content={"MsgRandom": 7})),
    ("sdkappid-equal", mod(Sdkappid=SDKAPPID), body()),
    ("user-to-account", content("User", To_Account=["u1", "u2"]),
     body(Type="User", Content={"To_Account": ["u1", "u2"]})),
    ("user-500-accounts", content("User", To_Account=tags(500)),
     body(Type="User", Content={"To_Account": tags(500)})),
    ("tag-condition", cond(TagsOr=["A", "B"], TagsNot=["C"]),
     body(Type="Tag", Content={"Condition": {"TagsOr": ["A", "B"], "TagsNot": ["C"]}})),
    ("tag-10-tags-50-bytes", cond(TagsAnd=tags(9) + ["é" * 25]),
     body(Type="Tag", Content={"Condition": {"TagsAnd": tags(9) + ["é" * 25]}})),
    ("unknown-content-keys-pass", mod(Content=PASS_THROUGH), body(Content=PASS_THROUGH)),
    ("msgrandom-bounds", content(MsgRandom=4294967295), body(Content={"MsgRandom": 4294967295})),
]


@pytest.mark.parametrize(("obj", "body"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_accepted_modification_gives_the_api_body(obj: dict[str, Any], body: dict[str, Any]) -> None:
    assert validate(obj, sdkappid=SDKAPPID, now=NOW).body(SDKAPPID) == body


def test_summary_is_the_normalised_request_without_sdkappid() -> None:
    obj = mod(TaskID="7", SchedAt="2030-06-15T22:00:00+08:00", Sdkappid=SDKAPPID, Content={"X": 1})
    got = validate(obj, sdkappid=SDKAPPID, now=NOW)
    assert got.summary() == {"TaskID": 7, "Type": "All", "SchedAt": LATER, "Content": {"X": 1}}
    assert got.Sdkappid == SDKAPPID


def test_body_takes_the_given_sdkappid_and_does_not_share_content() -> None:
    content = {"OfflinePushInfo": {"Title": "a"}, "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "x"}}]}
    got = validate(mod(Content=content), sdkappid=None, now=NOW)
    for copied in (got.body(99)["Content"], got.summary()["Content"]):  # arrays and objects, all the way down
        copied["OfflinePushInfo"]["Title"] = "changed"
        copied["MsgBody"][0]["MsgContent"]["Text"] = "changed"
        copied["MsgBody"].append({})
    assert got.body(99)["Sdkappid"] == 99
    assert got.Content == content == {"OfflinePushInfo": {"Title": "a"},
                                      "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "x"}}]}


def test_sdkappid_unknown_skips_the_equality_check() -> None:
    assert validate(mod(Sdkappid=5), sdkappid=None, now=NOW).Sdkappid == 5


def test_modification_is_frozen() -> None:
    got = validate(mod(), sdkappid=SDKAPPID, now=NOW)
    with pytest.raises(AttributeError):  # immutable (a NamedTuple)
        got.TaskID = 5  # type: ignore[misc]


# --- SchedAt forms -------------------------------------------------------------------------------

SCHED_AT = [
    ("api-form", "2030-06-15 14:00:00", "2030-06-15 14:00:00"),
    ("iso-offset-plus", "2030-06-15T22:00:00+08:00", "2030-06-15 14:00:00"),
    ("iso-offset-minus-crosses-day", "2030-06-15T20:30:00-05:00", "2030-06-16 01:30:00"),
    ("iso-offset-no-colon", "2030-06-15T22:00:00+0800", "2030-06-15 14:00:00"),
    ("iso-z", "2030-06-15T14:00:00Z", "2030-06-15 14:00:00"),
    ("iso-millis-z", "2030-06-15T14:00:00.000Z", "2030-06-15 14:00:00"),
    ("iso-fraction-truncated", "2030-06-15T14:00:59.999999999+00:00", "2030-06-15 14:00:59"),
    ("iso-naive-is-utc", "2030-06-15T14:00:00", "2030-06-15 14:00:00"),
    ("iso-no-seconds", "2030-06-15T22:05+08:00", "2030-06-15 14:05:00"),
    ("leap-day", "2028-02-29 00:00:00", "2028-02-29 00:00:00"),
    ("one-second-ahead", "2026-01-01 12:00:01", "2026-01-01 12:00:01"),
]


@pytest.mark.parametrize(("given_at", "utc"), [c[1:] for c in SCHED_AT], ids=[c[0] for c in SCHED_AT])
def test_sched_at_is_normalised_to_api_utc(given_at: str, utc: str) -> None:
    assert validate(mod(SchedAt=given_at), sdkappid=SDKAPPID, now=NOW).SchedAt == utc


def test_naive_now_is_taken_as_utc() -> None:
    with pytest.raises(LocalRefusal) as caught:
        validate(mod(SchedAt="2026-01-01 12:00:00"), sdkappid=None, now=NOW.replace(tzinfo=None))
    assert caught.value.code == LOCAL_TOO_LATE


def test_now_with_offset_is_compared_as_an_instant() -> None:
    now = NOW.astimezone(timezone(timedelta(hours=8)))  # 20:00 +08:00, the same instant
    assert refusal_at(mod(SchedAt="2026-01-01T20:00:00+08:00"), now).code == LOCAL_TOO_LATE
    later = "2026-01-01 12:00:01"
    assert validate(mod(SchedAt=later), sdkappid=None, now=now).SchedAt == later


def refusal_at(obj: object, now: datetime) -> LocalRefusal:
    with pytest.raises(LocalRefusal) as caught:
        validate(obj, sdkappid=None, now=now)
    return caught.value


# --- refused -------------------------------------------------------------------------------------

NONE = LOCAL_INVALID
LATE = LOCAL_TOO_LATE
NOT_FUTURE = "is not in the future"
NOT_VALID = "not a valid date and time"
CONDITION_KEYS = "TagsAnd, TagsOr, TagsNot, AttrsAnd, AttrsOr"
PUSH = "Content.OfflinePushInfo"
REFUSED = [
    # the item itself
    ("array", [mod()], NONE, "modification", "expected a JSON object, got an array"),
    ("number", 5, NONE, "modification", "expected a JSON object, got a number"),
    ("string", "x", NONE, "modification", "expected a JSON object, got a string"),
    ("null", None, NONE, "modification", "expected a JSON object, got null"),
    ("not-json", NOT_JSON, NONE, "modification", "not JSON"),
    ("modifications-not-list", {"modifications": {"TaskID": 1}}, NONE, "modifications",
     "expected a non-empty array of modifications, got an object"),
    ("modifications-empty", {"modifications": []}, NONE, "modifications", "non-empty array"),
    ("unknown-key", mod(SchedAT=LATER), NONE, "SchedAT",
     "unknown field (expected one of TaskID, Type, SchedAt, Content, Sdkappid, IssuedAt)"),
    ("nothing-to-modify", mod(SchedAt=...), NONE, "modification", "needs SchedAt or Content"),
    ("nothing-to-modify-nulls", mod(SchedAt=None, Content=None), NONE, "modification", "needs SchedAt or Content"),
    # TaskID
    ("taskid-missing", mod(TaskID=...), NONE, "TaskID", "required"),
    ("taskid-true", mod(TaskID=True), NONE, "TaskID", "got true"),
    ("taskid-false", mod(TaskID=False), NONE, "TaskID", "got false"),
    ("taskid-float", mod(TaskID=5.0), NONE, "TaskID", "got 5.0"),
    ("taskid-negative", mod(TaskID=-3), NONE, "TaskID", "must be greater than 0"),
    ("taskid-zero", mod(TaskID=0), NONE, "TaskID", "must be greater than 0"),
    ("taskid-zero-string", mod(TaskID="0"), NONE, "TaskID", "must be greater than 0"),
    ("taskid-too-big", mod(TaskID=2**63), NONE, "TaskID", "must be at most 9223372036854775807"),
    ("taskid-too-big-string", mod(TaskID="9" * 40), NONE, "TaskID", "must be at most 9223372036854775807"),
    ("taskid-signed-string", mod(TaskID="+5"), NONE, "TaskID", "string of digits, got '+5'"),
    ("taskid-spaced-string", mod(TaskID=" 5"), NONE, "TaskID", "string of digits"),
    ("taskid-non-ascii-digits", mod(TaskID="٣"), NONE, "TaskID", "string of digits"),
    ("taskid-null", mod(TaskID=None), NONE, "TaskID", "got null"),
    # Type
    ("type-missing", mod(Type=...), NONE, "Type", "required"),
    ("type-lowercase", mod(Type="all"), NONE, "Type", "expected 'All', 'Tag' or 'User', got 'all'"),
    ("type-number", mod(Type=1), NONE, "Type", "got 1"),
    # SchedAt
    ("schedat-past", mod(SchedAt="2020-01-01 00:00:00"), LATE, "SchedAt", "2020-01-01 00:00:00 " + NOT_FUTURE),
    ("schedat-now", mod(SchedAt="2026-01-01 12:00:00"), LATE, "SchedAt", NOT_FUTURE),
    ("schedat-past-after-utc", mod(SchedAt="2026-01-01T19:59:59+08:00"), LATE, "SchedAt",
     "2026-01-01 11:59:59 " + NOT_FUTURE),
    ("schedat-past-truncated", mod(SchedAt="2026-01-01T12:00:00.9Z"), LATE, "SchedAt", NOT_FUTURE),
    ("schedat-impossible-date", mod(SchedAt="2030-02-30 10:00:00"), NONE, "SchedAt", NOT_VALID),
    ("schedat-hour-24", mod(SchedAt="2030-06-15 24:00:00"), NONE, "SchedAt", NOT_VALID),
    ("schedat-iso-impossible", mod(SchedAt="2030-13-01T10:00:00Z"), NONE, "SchedAt", NOT_VALID),
    ("schedat-offset-out-of-range", mod(SchedAt="2030-06-15T10:00:00+24:00"), NONE, "SchedAt", "UTC offset"),
    ("schedat-overflow", mod(SchedAt="9999-12-31T23:00:00-05:00"), NONE, "SchedAt", NOT_VALID),
    ("schedat-date-only", mod(SchedAt="2030-06-15"), NONE, "SchedAt", "expected 'YYYY-MM-DD HH:MM:SS'"),
    ("schedat-api-form-with-offset", mod(SchedAt="2030-06-15 14:00:00+08:00"), NONE, "SchedAt", "ISO 8601"),
    ("schedat-slashes", mod(SchedAt="2030/06/15 14:00:00"), NONE, "SchedAt", "got '2030/06/15 14:00:00'"),
    ("schedat-number", mod(SchedAt=1900000000), NONE, "SchedAt", "expected a string, got 1900000000"),
    ("schedat-lone-surrogate", mod(SchedAt="\udcff"), NONE, "SchedAt", "got '\\udcff'"),
    ("schedat-surrogate-pair-halves", mod(SchedAt="2030-06-15\ud83d 10:00:00"), NONE, "SchedAt", "\\ud83d"),
    # IssuedAt
    ("issuedat-naive", mod(IssuedAt="2026-01-01T11:00:00"), NONE, "IssuedAt", "with a UTC offset"),
    ("issuedat-api-form", mod(IssuedAt="2026-01-01 11:00:00"), NONE, "IssuedAt", "with a UTC offset"),
    ("issuedat-far-future", mod(IssuedAt="2026-01-01T12:06:00Z"), NONE, "IssuedAt",
     "2026-01-01T12:06:00.000Z is more than 5 minutes in the future"),
    ("issuedat-number", mod(IssuedAt=1767268800000), NONE, "IssuedAt", "expected a string"),
    ("issuedat-surrogate", mod(IssuedAt="\udc80Z"), NONE, "IssuedAt", "\\udc80"),
    # Sdkappid
    ("sdkappid-mismatch", mod(Sdkappid=1400000001), NONE, "Sdkappid",
     "1400000001 does not match the configured SDKAppID 1400000000"),
    ("sdkappid-string", mod(Sdkappid=str(SDKAPPID)), NONE, "Sdkappid", "expected an integer"),
    ("sdkappid-bool", mod(Sdkappid=True), NONE, "Sdkappid", "expected an integer, got true"),
    # Content and To_Account
    ("content-array", mod(Content=[]), NONE, "Content", "expected an object, got an array"),
    ("to-account-for-all", content(To_Account=["u"]), NONE, "Content.To_Account", "only valid for Type User"),
    ("to-account-for-tag", content("Tag", To_Account=["u"]), NONE, "Content.To_Account", "only valid for Type User"),
    ("to-account-empty", content("User", To_Account=[]), NONE, "Content.To_Account", "must not be empty"),
    ("to-account-501", content("User", To_Account=tags(501)), NONE, "Content.To_Account",
     "has 501 entries, at most 500 allowed"),
    ("to-account-not-list", content("User", To_Account="u1"), NONE, "Content.To_Account",
     "expected an array, got 'u1'"),
    ("to-account-empty-string", content("User", To_Account=["a", "b", "c", ""]), NONE, "Content.To_Account[3]",
     "must not be empty"),
    ("to-account-number", content("User", To_Account=["a", 7]), NONE, "Content.To_Account[1]",
     "expected a string, got 7"),
    # Condition
    ("condition-for-all", content(Condition={"TagsOr": ["a"]}), NONE, "Content.Condition", "only valid for Type Tag"),
    ("condition-for-user", content("User", Condition={"TagsOr": ["a"]}), NONE, "Content.Condition",
     "only valid for Type Tag"),
    ("condition-not-object", content("Tag", Condition=["a"]), NONE, "Content.Condition",
     "expected an object, got an array"),
    ("condition-null", content("Tag", Condition=None), NONE, "Content.Condition", "expected an object, got null"),
    ("condition-empty", cond(), NONE, "Content.Condition", "needs at least one of " + CONDITION_KEYS),
    ("condition-unknown-key", cond(TagsOR=["a"]), NONE, "Content.Condition.TagsOR",
     f"unknown field (expected one of {CONDITION_KEYS})"),
    ("tags-not-list", cond(TagsAnd="a"), NONE, "Content.Condition.TagsAnd", "expected an array, got 'a'"),
    ("tags-empty-list", cond(TagsNot=[]), NONE, "Content.Condition.TagsNot", "must not be empty"),
    ("tags-11", cond(TagsOr=tags(11)), NONE, "Content.Condition.TagsOr", "has 11 entries, at most 10 allowed"),
    ("tag-empty", cond(TagsOr=["a", ""]), NONE, "Content.Condition.TagsOr[1]", "must not be empty"),
    ("tag-51-bytes", cond(TagsAnd=["a" + "é" * 25]), NONE, "Content.Condition.TagsAnd[0]",
     "longer than 50 UTF-8 bytes"),
    ("tag-not-string", cond(TagsNot=[1]), NONE, "Content.Condition.TagsNot[0]", "expected a string, got 1"),
    ("tag-in-or-and-and", cond(TagsOr=["a", "b"], TagsAnd=["b"]), NONE, "Content.Condition",
     "tag 'b' is in both TagsOr and TagsAnd"),
    ("tags-with-attrs", cond(TagsOr=["a"], AttrsAnd={"c": "x"}), NONE, "Content.Condition",
     "tag conditions (TagsOr) and attribute conditions (AttrsAnd) cannot be combined"),
    ("attrs-alone", cond(**ATTRS), NONE, "Content.Condition",
     "Type Tag needs TagsAnd, TagsOr or TagsNot; AttrsAnd, AttrsOr alone is not a tag push"),
    ("attrs-not-object", cond(AttrsOr=["c"]), NONE, "Content.Condition.AttrsOr", "expected an object, got an array"),
    ("attrs-empty", cond(AttrsAnd={}), NONE, "Content.Condition.AttrsAnd", "must not be empty"),
    # OfflinePushInfo, From_Account, MsgRandom
    ("push-info-not-object", content(OfflinePushInfo="t"), NONE, PUSH, "expected an object, got 't'"),
    ("push-info-null", content(OfflinePushInfo=None), NONE, PUSH, "expected an object, got null"),
    ("title-number", push(Title=1), NONE, PUSH + ".Title", "expected a string, got 1"),
    ("desc-null", push(Desc=None), NONE, PUSH + ".Desc", "expected a string, got null"),
    ("ext-object", push(Ext={}), NONE, PUSH + ".Ext", "expected a string, got an object"),
    ("pushflag-2", push(PushFlag=2), NONE, PUSH + ".PushFlag", "must be at most 1"),
    ("pushflag-true", push(PushFlag=True), NONE, PUSH + ".PushFlag", "expected an integer, got true"),
    ("pushflag-string", push(PushFlag="1"), NONE, PUSH + ".PushFlag", "expected an integer, got '1'"),
    ("from-account-number", content(From_Account=5), NONE, "Content.From_Account", "expected a string, got 5"),
    ("msgrandom-negative", content(MsgRandom=-1), NONE, "Content.MsgRandom", "must be at least 0"),
    ("msgrandom-too-big", content(MsgRandom=2**32), NONE, "Content.MsgRandom", "must be at most 4294967295"),
    ("msgrandom-bool", content(MsgRandom=False), NONE, "Content.MsgRandom", "expected an integer, got false"),
    ("msgrandom-float", content(MsgRandom=1.5), NONE, "Content.MsgRandom", "expected an integer, got 1.5"),
]


@pytest.mark.parametrize(("obj", "code", "field", "message"), [c[1:] for c in REFUSED],
                         ids=[c[0] for c in REFUSED])
def test_refused_with_code_and_the_field_named(obj: object, code: int, field: str, message: str) -> None:
    got = refusal(obj)
    assert got.code == code
    matching = [e["message"] for e in got.errors if e["field"] == field]
    assert len(matching) == 1, got.errors
    assert message in matching[0]
    assert f"{field}: {matching[0]}" in got.reason
    assert str(got) == got.reason
    assert "pydantic" not in got.reason


def test_every_problem_is_listed_once_and_joined_in_the_reason() -> None:
    # Given a modification wrong in four independent places
    obj = {"TaskID": True, "Type": "User", "SchedAT": LATER,
           "Content": {"To_Account": ["a", ""], "OfflinePushInfo": {"PushFlag": 3}}}
    # When it is validated
    got = refusal(obj)
    # Then each is one entry, in order, and the reason joins them
    fields = [e["field"] for e in got.errors]
    assert fields == ["TaskID", "SchedAT", "Content.To_Account[1]", "Content.OfflinePushInfo.PushFlag"]
    assert got.reason == "; ".join(f"{e['field']}: {e['message']}" for e in got.errors)
    assert got.code == LOCAL_INVALID


def test_a_past_time_with_another_problem_is_invalid_not_too_late() -> None:
    got = refusal(mod(SchedAt="2020-01-01 00:00:00", TaskID=0))
    assert got.code == LOCAL_INVALID
    assert [e["field"] for e in got.errors] == ["TaskID", "SchedAt"]


def test_missing_type_skips_the_type_dependent_content_rules() -> None:
    got = refusal(mod(Type=..., Content={"To_Account": ["u"], "Condition": {"TagsOr": ["a"]}}))
    assert [e["field"] for e in got.errors] == ["Type"]


@pytest.mark.parametrize("field", ["SchedAt", "Type", "TaskID"])
def test_a_huge_value_is_not_echoed_in_full(field: str) -> None:
    got = refusal(mod(**{field: "x" * 10_000}))
    assert len(got.reason) < 300
    assert "x" * 61 not in got.reason


def test_a_huge_number_is_not_echoed() -> None:
    got = refusal(mod(TaskID=10**5000))
    assert len(got.reason) < 200
    assert [e["field"] for e in got.errors] == ["TaskID"]


def test_single_builds_a_one_field_refusal() -> None:
    got = LocalRefusal.single("Sdkappid", "does not match the configured SDKAppID")
    assert (got.code, got.reason) == (LOCAL_INVALID, "Sdkappid: does not match the configured SDKAppID")
    assert got.errors == [{"field": "Sdkappid", "message": "does not match the configured SDKAppID"}]
    assert LocalRefusal.single("SchedAt", "is not in the future", LOCAL_TOO_LATE).code == LOCAL_TOO_LATE


def test_modification_refuses_unknown_keys_when_built_directly() -> None:
    with pytest.raises(TypeError, match="Extra"):
        Modification(**{"TaskID": 1, "Type": "All", "SchedAt": LATER, "Extra": 1})


# --- split_payload -------------------------------------------------------------------------------

ONE = '{"TaskID": 1, "Type": "All", "SchedAt": "2030-06-15 14:00:00"}'
ONE_PARSED = {"TaskID": 1, "Type": "All", "SchedAt": LATER}
SPLIT = [
    ("single-text-kept-exactly", ONE, [(ONE, ONE_PARSED)]),
    ("single-bytes", ONE.encode(), [(ONE, ONE_PARSED)]),
    ("array-text", '[{"TaskID": 1}, {"TaskID": "2", "Type": "Tag"}]',
     [('{"TaskID":1}', {"TaskID": 1}), ('{"TaskID":"2","Type":"Tag"}', {"TaskID": "2", "Type": "Tag"})]),
    ("array-of-one-is-its-own-json", "[ {\"TaskID\" : 1} ]", [('{"TaskID":1}', {"TaskID": 1})]),
    ("modifications-text", '{"modifications": [{"TaskID": 1}, 5]}',
     [('{"TaskID":1}', {"TaskID": 1}), ("5", 5)]),
    ("non-ascii-kept", '[{"T": "é中"}]', [('{"T":"é中"}', {"T": "é中"})]),
    ("not-json", "TaskID=1", [("TaskID=1", NOT_JSON)]),
    ("empty-text", "", [("", NOT_JSON)]),
    ("nan-is-not-json", '{"TaskID": NaN}', [('{"TaskID": NaN}', NOT_JSON)]),
    ("bytes-not-utf8", b'{"T": "\xff"}', [('{"T": "\ufffd"}', NOT_JSON)]),
    ("bytes-array", b'[{"T":"\xc3\xa9"},{"T":2}]', [('{"T":"é"}', {"T": "é"}), ('{"T":2}', {"T": 2})]),
    ("bom-parsed-raw-kept", "\ufeff" + ONE, [("\ufeff" + ONE, ONE_PARSED)]),
    ("parsed-dict", {"TaskID": 1, "Type": "All"},
     [('{"TaskID":1,"Type":"All"}', {"TaskID": 1, "Type": "All"})]),
    ("parsed-list", [{"TaskID": 1}, {"TaskID": 2}],
     [('{"TaskID":1}', {"TaskID": 1}), ('{"TaskID":2}', {"TaskID": 2})]),
    ("parsed-modifications", {"modifications": [{"TaskID": 1}]}, [('{"TaskID":1}', {"TaskID": 1})]),
    ("modifications-not-list-is-one-item", '{"modifications": {"TaskID": 1}}',
     [('{"modifications": {"TaskID": 1}}', {"modifications": {"TaskID": 1}})]),
    ("modifications-with-other-keys-is-one-item", '{"modifications": [], "TaskID": 1}',
     [('{"modifications": [], "TaskID": 1}', {"modifications": [], "TaskID": 1})]),
    ("empty-array-is-one-item", "[]", [("[]", [])]),
    ("empty-modifications-is-one-item", '{"modifications": []}',
     [('{"modifications": []}', {"modifications": []})]),
    ("number", "42", [("42", 42)]),
    ("json-string", '"x"', [('"x"', "x")]),
    ("json-null", "null", [("null", None)]),
    ("parsed-number", 42, [("42", 42)]),
    ("parsed-none", None, [("null", None)]),
]


@pytest.mark.parametrize(("payload", "items"), [c[1:] for c in SPLIT], ids=[c[0] for c in SPLIT])
def test_split_payload(payload: object, items: list[tuple[str, object]]) -> None:
    assert split_payload(payload) == [Item(raw, parsed) for raw, parsed in items]


@pytest.mark.parametrize(("payload", "field"), [
    ('{"modifications": {"TaskID": 1}}', "modifications"),
    ('{"modifications": []}', "modifications"),
    ("[]", "modification"),
    ("not json", "modification"),
], ids=["modifications-object", "modifications-empty", "empty-array", "not-json"])
def test_a_payload_without_modifications_is_refused_not_dropped(payload: str, field: str) -> None:
    [item] = split_payload(payload)
    assert refusal(item.parsed).errors[0]["field"] == field


def test_split_items_validate() -> None:
    items = split_payload('{"modifications": [{"TaskID": 1, "Type": "All", "SchedAt": "2030-06-15T14:00:00Z"}]}')
    assert validate(items[0].parsed, sdkappid=None, now=NOW).SchedAt == LATER


# --- never anything but LocalRefusal ------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
TEXTS = st.sampled_from(["2030-06-15 14:00:00", "2020-01-01T00:00:00Z", "2030-02-30T25:61:00+99:99", "a", ""])
NEAR_VALID = st.fixed_dictionaries(
    {},
    optional={
        "TaskID": st.integers() | st.text(alphabet="0123456789", max_size=25) | JSON,
        "Type": st.sampled_from(["All", "Tag", "User"]) | JSON,
        "SchedAt": TEXTS | st.text(max_size=30) | JSON,
        "Sdkappid": st.integers() | JSON,
        "Content": st.fixed_dictionaries({}, optional={
            "To_Account": st.lists(st.text(max_size=3) | JSON, max_size=3) | JSON,
            "Condition": st.dictionaries(
                st.sampled_from(["TagsAnd", "TagsOr", "TagsNot", "AttrsAnd", "AttrsOr", "X"]),
                st.lists(st.text(max_size=60), max_size=12) | JSON, max_size=4),
            "OfflinePushInfo": st.dictionaries(st.sampled_from(["Title", "Desc", "Ext", "PushFlag"]), JSON),
            "MsgRandom": st.integers() | JSON,
            "From_Account": JSON,
        }) | JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(obj=JSON | NEAR_VALID, sdkappid=st.none() | st.integers(min_value=1, max_value=2**40))
def test_validate_raises_nothing_but_local_refusal(obj: object, sdkappid: int | None) -> None:
    try:
        got = validate(obj, sdkappid=sdkappid, now=NOW)
    except LocalRefusal as exc:
        assert exc.code in (LOCAL_INVALID, LOCAL_TOO_LATE)
        assert exc.errors
        assert all(e["field"] for e in exc.errors)
        assert len(exc.reason) <= 200 * len(exc.errors) + 100
    else:
        assert got.body(SDKAPPID)["TaskID"] == got.TaskID > 0


@settings(max_examples=200, deadline=None)
@given(payload=JSON | st.binary(max_size=40) | st.text(max_size=40))
def test_split_payload_always_gives_items(payload: object) -> None:
    items = split_payload(payload)
    assert items
    assert all(isinstance(i.raw, str) for i in items)


@pytest.mark.parametrize(("key", "field"), [
    ("", '[""]'),
    ("a.b", '["a.b"]'),
    ("k" * 100, '["' + "k" * 59 + '…"]'),
], ids=["empty", "dotted", "huge"])
def test_an_odd_unknown_key_is_quoted_and_capped(key: str, field: str) -> None:
    got = refusal(mod(**{key: 1}))
    assert [e["field"] for e in got.errors] == [field]


def test_a_key_that_cannot_be_read_refuses_its_object_by_name() -> None:
    # A lone surrogate in a key cannot be encoded for the API: the object holding it is refused as a whole
    unreadable = "input should be a valid string, unable to parse raw data as a unicode string"
    assert refusal(mod(**{"\udcff": 1})).errors == [{"field": "modification", "message": unreadable}]
    assert refusal(mod(Content={"\udcff": 1})).errors == [{"field": "Content", "message": unreadable}]
    assert refusal(push(**{"\udcff": 1})).errors == [{"field": PUSH, "message": unreadable}]


def test_a_list_over_its_limit_is_refused_without_its_entries() -> None:
    got = refusal(content("User", To_Account=["a", 7, ""] * 200))
    assert got.errors == [{"field": "Content.To_Account", "message": "has 600 entries, at most 500 allowed"}]


def test_issued_at_is_normalised_to_utc_milliseconds_and_never_sent() -> None:
    got = validate(mod(IssuedAt="2026-01-01T19:59:00.1234+08:00"), sdkappid=SDKAPPID, now=NOW)
    assert got.IssuedAt == "2026-01-01T11:59:00.123Z"
    assert got.issued_at == datetime(2026, 1, 1, 11, 59, 0, 123000, tzinfo=UTC)
    assert got.summary()["IssuedAt"] == "2026-01-01T11:59:00.123Z"
    assert "IssuedAt" not in got.body(SDKAPPID)


def test_issued_at_a_little_ahead_is_clock_skew_and_accepted() -> None:
    got = validate(mod(IssuedAt="2026-01-01T12:04:59Z"), sdkappid=SDKAPPID, now=NOW)
    assert got.IssuedAt == "2026-01-01T12:04:59.000Z"


def test_body_keeps_only_the_fields_asked_for() -> None:
    got = validate(mod(Content={"X": 1}), sdkappid=SDKAPPID, now=NOW)
    assert got.fields == ("SchedAt", "Content")
    assert "SchedAt" not in got.body(SDKAPPID, only=("Content",))
    assert got.body(SDKAPPID, only=("Content",))["Content"] == {"X": 1}
