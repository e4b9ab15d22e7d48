"""A history entry (handler.order.history): its fields, its bound, and what it never holds."""

from __future__ import annotations

import json

from handler.model import Item
from handler.order.history import CAP, MAX_ENTRY_BYTES, Draft, change_id, fields_of, newest
from handler.order.key import Stamp, TaskKey
from handler.order.payload import later_changes
from handler.order.task import TaskOrder
from handler.state.memory import MemoryStore

TASK = TaskKey(1400000001, 7)


def test_an_entry_holds_what_design_names() -> None:
    draft = Draft(TASK, Stamp(1_780_000_000_123, "sqs:m1", pos=2), "sqs",
                  fields_of("2031-06-15 14:00:00", {"OfflinePushInfo": {"Title": "New title", "Desc": "d"}}),
                  "req-1", {"Content": Stamp(1_780_000_000_500, "http:r9")})
    doc = json.loads(draft.entry("succeeded", 0, 1_780_000_001.5))
    assert doc == {"at": "2026-05-28T20:26:41.500Z", "outcome": "succeeded", "error_code": 0, "change": "sqs:m1#2",
                   "source": "sqs", "issued_at": "2026-05-28T20:26:40.123Z",
                   "fields": {"SchedAt": "2031-06-15 14:00:00",
                              "Content": {"digest": doc["fields"]["Content"]["digest"], "title": "New title"}},
                   "superseded_by": {"Content": "http:r9"}, "request_id": "req-1"}


def test_content_is_a_digest_and_a_cut_title_never_a_user_id() -> None:
    one = fields_of(None, {"To_Account": ["alice"], "OfflinePushInfo": {"Title": "x" * 60}})["Content"]
    other = fields_of(None, {"To_Account": ["bob"], "OfflinePushInfo": {"Title": "x" * 60}})["Content"]
    changed = fields_of(None, {"To_Account": ["bob"], "OfflinePushInfo": {"Title": "y"}})["Content"]
    assert one["title"] == "x" * 40 and len(one["digest"]) == 16
    assert one == other  # the users are not in it, not even through the digest
    assert changed["digest"] != one["digest"]
    assert "alice" not in json.dumps(one)


def test_the_worst_entry_stays_within_its_bound() -> None:
    # every text at its longest, made of characters JSON escapes to six bytes each, and a lone surrogate
    worst = "\x01" * 500 + "\ud800"
    draft = Draft(TASK, Stamp(253_402_300_799_999, worst, pos=999_999), worst,
                  fields_of("2031-06-15 14:00:00", {"OfflinePushInfo": {"Title": worst}}), worst,
                  {"SchedAt": Stamp(1, worst), "Content": Stamp(2, worst)})
    text = draft.entry("dead_lettered", -2**63, 253402300799.999)
    assert len(text.encode("utf-8")) <= MAX_ENTRY_BYTES
    assert CAP * MAX_ENTRY_BYTES < 400_000 // 2  # DynamoDB's item limit, with room for the order and trimming


def test_a_change_applied_by_itself_adds_no_entry_and_one_won_by_another_does() -> None:
    store = MemoryStore(keeps_history=True)
    order = TaskOrder(store)
    mine, newer = Stamp(5, "sqs:a"), Stamp(6, "sqs:b")
    order.applied(order.claim(TASK, ("SchedAt",), mine, 1e12), None, Draft(TASK, mine, "sqs", {}))
    again = order.claim(TASK, ("SchedAt",), mine, 1e12, draft=Draft(TASK, mine, "sqs", {}))  # a redelivery
    assert again.already_applied and again.already == ("SchedAt",) and not again.won
    assert [e["outcome"] for e in newest(store.history(TASK))] == ["succeeded"]
    order.applied(order.claim(TASK, ("SchedAt",), newer, 1e12), None, Draft(TASK, newer, "sqs", {}))
    late = order.claim(TASK, ("SchedAt",), mine, 1e12, draft=Draft(TASK, mine, "sqs", {}))
    assert not late.already_applied and late.won == {"SchedAt": newer}
    assert [e["outcome"] for e in newest(store.history(TASK))] == ["succeeded", "succeeded", "superseded"]
    assert change_id(Stamp(5, "")) == "-"


def test_later_changes_name_the_entry_that_wins() -> None:
    from datetime import UTC, datetime

    from handler.order.key import Issue

    items = [Item(raw="", parsed={"TaskID": 1, "Type": "All", "SchedAt": "2031-01-01 00:00:00"}) for _ in range(3)]
    issue = Issue(datetime(2030, 1, 1, tzinfo=UTC), "sqs:m")
    laters = later_changes(items, [issue.entry(i) for i in range(3)], 1400000001)
    assert [{name: stamp.pos for name, stamp in later.items()} for later in laters] == [
        {"SchedAt": 2}, {"SchedAt": 2}, {}]


def test_a_payload_entry_held_back_is_superseded_by_the_later_one() -> None:
    store = MemoryStore(keeps_history=True)
    order = TaskOrder(store)
    mine, later = Stamp(5, "sqs:m"), Stamp(5, "sqs:m", pos=1)
    claim = order.claim(TASK, ("SchedAt",), mine, 1e12, {"SchedAt": later}, Draft(TASK, mine, "sqs", {}))
    assert claim.kept == ()
    assert [(e["outcome"], e["superseded_by"]) for e in newest(store.history(TASK))] == [
        ("superseded", {"SchedAt": "sqs:m#1"})]


def test_newest_reads_the_last_and_skips_what_does_not_parse() -> None:
    assert newest(['{"a": 1}', "not json", '{"a": 2}', '{"a": 3}'], 2) == [{"a": 2}, {"a": 3}]
    assert newest(['{"a": 1}'], 0) == []


def test_without_a_store_there_is_no_history() -> None:
    # Given the process's own memory, as the handler has it without IM_STATE_STORE (DESIGN "Task history")
    store = MemoryStore()
    order = TaskOrder(store)
    mine, newer = Stamp(5, "sqs:a"), Stamp(6, "sqs:b")
    # When a change succeeds, a later one supersedes an older, and a failure is dead-lettered
    order.applied(order.claim(TASK, ("SchedAt",), newer, 1e12), None, Draft(TASK, newer, "sqs", {}))
    order.claim(TASK, ("SchedAt",), mine, 1e12, draft=Draft(TASK, mine, "sqs", {}))
    order.noted(TASK, Draft(TASK, mine, "sqs", {}), "dead_lettered", 90105)
    # Then the order holds, and nothing was written to a history
    assert store.lease(TASK, "look", 0, 0).applied["SchedAt"] == newer
    assert store.history(TASK) == []
