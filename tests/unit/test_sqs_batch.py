"""The SQS batch loop answers exactly as powertools' partial batch processors it replaced."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from handler.aws.sqs import SQSRecord, partial_response

GROUPS = st.sampled_from([None, "", "g1", "g2", "g3"])
RECORD = st.fixed_dictionaries({"messageId": st.text(min_size=1, max_size=6), "body": st.sampled_from(["ok", "fail"])},
                               optional={"attributes": st.fixed_dictionaries({}, optional={"MessageGroupId": GROUPS})})


def run(records: list[dict[str, Any]], fifo: bool, mine: bool) -> tuple[Any, list[str]]:
    """The answer, and the message ids the record handler was called for, in order."""
    seen: list[str] = []

    def on_record(record: Any) -> None:
        seen.append(record.message_id)
        if record.body == "fail":
            raise RuntimeError("to come back")

    if mine:
        return partial_response(records, on_record, fifo), seen
    processor: BatchProcessor = SqsFifoPartialProcessor(skip_group_on_error=True) if fifo else BatchProcessor(
        event_type=EventType.SQS)
    processor.raise_on_entire_batch_failure = False
    return process_partial_response({"Records": records}, on_record, processor), seen


@settings(max_examples=300, deadline=None)
@given(records=st.lists(RECORD, min_size=1, max_size=8), fifo=st.booleans())
def test_answers_and_runs_the_same_records_as_powertools(records: list[dict[str, Any]], fifo: bool) -> None:
    assert run(records, fifo, mine=True) == run(records, fifo, mine=False)


def test_a_failed_fifo_group_holds_back_only_its_own_later_messages() -> None:
    # Given a FIFO batch where the first message of group a is to come back
    records = [{"messageId": m, "body": b, "attributes": {"MessageGroupId": g}}
               for m, b, g in [("1", "fail", "a"), ("2", "ok", "b"), ("3", "ok", "a"), ("4", "ok", "b")]]
    # When the batch runs
    answer, seen = run(records, fifo=True, mine=True)
    # Then the rest of group a is listed without running; group b runs on
    assert answer == {"batchItemFailures": [{"itemIdentifier": "1"}, {"itemIdentifier": "3"}]}
    assert seen == ["1", "2", "4"]


def test_records_read_as_powertools_reads_them() -> None:
    record = SQSRecord({"messageId": "m", "body": "b", "attributes": {"ApproximateReceiveCount": "2",
                                                                      "SentTimestamp": "1700000000000"}})
    assert (record.message_id, record.body, record.attributes.approximate_receive_count,
            record.attributes.sent_timestamp) == ("m", "b", "2", "1700000000000")
    with pytest.raises(KeyError):
        _ = SQSRecord({"messageId": "m", "body": "b"}).attributes
