"""What producers and callers control, read without crashing: bounded JSON, platform times, ids as text."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest

from handler.compat import UTC
from handler.model import MAX_DEPTH, TOO_DEEP, TooDeep, loads, split_payload
from handler.order.key import Issue, Stamp, text_id
from handler.sources.times import platform_time

RECEIVED = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_within_the_bound_is_read_and_beyond_it_refused() -> None:
    assert loads(nested(MAX_DEPTH)) is not None
    with pytest.raises(TooDeep, match="nested too deeply"):
        loads(nested(MAX_DEPTH + 1))
    with pytest.raises(TooDeep):  # json itself would raise RecursionError here, which is no ValueError
        loads(nested(5000))
    with pytest.raises(TooDeep):
        loads('{"a": ' * 150 + "1" + "}" * 150)


def test_strict_json_refuses_nan_and_infinity() -> None:
    for text in ("NaN", '{"TaskID": Infinity}', "-Infinity"):
        with pytest.raises(ValueError, match="is not JSON"):
            loads(text)


def test_a_payload_too_deep_is_one_item_refused_as_such() -> None:
    # Given text, and a value Lambda's runtime already parsed, both nested beyond the bound
    deep: Any = {}
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    for payload in (nested(3000), deep, json.dumps(deep)):
        [item] = split_payload(payload)
        assert item.parsed is TOO_DEEP


@pytest.mark.parametrize(("value", "expected"), [
    ("1780300800000", datetime(2026, 6, 1, 8, tzinfo=UTC)), (1780300800000, datetime(2026, 6, 1, 8, tzinfo=UTC)),
    ("2026-06-01T08:00:00.250+08:00", datetime(2026, 6, 1, 0, 0, 0, 250000, tzinfo=UTC)),
])
def test_a_usable_platform_time_is_read(value: Any, expected: datetime, caplog: pytest.LogCaptureFixture) -> None:
    assert platform_time(value, RECEIVED, "time") == expected
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_no_platform_time_is_the_receipt_without_a_word(caplog: pytest.LogCaptureFixture) -> None:
    assert platform_time(None, RECEIVED, "time") == RECEIVED
    assert caplog.records == []


@pytest.mark.parametrize("value", [
    "99999999999999999", "9" * 400, "253402300800000", "946684799999", "0", "-1", "abc", "", "²", "1e3",
    "0001-01-01T00:00:00+01:00", 1e300, float("nan"), -5, True, [], {"a": 1}, 10**500])
def test_an_unusable_platform_time_is_the_receipt_with_a_warning(value: Any, caplog: pytest.LogCaptureFixture,
                                                                 ) -> None:
    with caplog.at_level(logging.WARNING):
        assert platform_time(value, RECEIVED, "EventList[0].time") == RECEIVED
    [warning] = caplog.records
    assert warning.getMessage() == "platform time unusable: the time of receipt is used"
    assert warning.field == "EventList[0].time"  # type: ignore[attr-defined]
    assert len(warning.value) <= 40  # type: ignore[attr-defined]


def test_the_edges_of_usable_platform_times() -> None:
    earliest, latest = datetime(2000, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert platform_time(str(int(earliest.timestamp() * 1000)), RECEIVED, "t") == earliest
    assert platform_time(253402300799999, RECEIVED, "t") == latest
    assert platform_time(253402300800000, RECEIVED, "t") == RECEIVED
    assert platform_time(946684799999, RECEIVED, "t") == RECEIVED


def test_an_id_that_is_not_valid_text_is_escaped() -> None:
    lone = "evt-\udcff-1"
    assert text_id(lone) == "evt-\\udcff-1"
    assert text_id("ascii-id") == "ascii-id" and text_id("ünïcode-☃") == "ünïcode-☃"
    # the order key digests it (this raised UnicodeEncodeError), and keeps it as text a store can hold
    stamp = Issue(RECEIVED, f"scf:{lone}").stamp()
    assert stamp.by == "scf:evt-\\udcff-1" and stamp.key == Stamp(stamp.issued_ms, "scf:evt-\\udcff-1").key
    assert stamp.key != Issue(RECEIVED + timedelta(0), "scf:evt-?-1").stamp().key


def test_a_dead_letter_queue_s_deep_message_is_no_record_not_a_crash() -> None:
    # A queue's own redrive policy may move any body into the dead-letter queue the maintenance job and
    # `timpush redrive` read: one nested thousands deep raised RecursionError there
    from handler.deadletter.record import parse_record

    assert parse_record(nested(5000)) is None
