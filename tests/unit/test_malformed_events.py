"""Events with a trigger's shape that lack what the trigger always sends: MalformedEvent naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handler.aws.sqs import check_records
from handler.sources import MalformedEvent
from handler.sources.http import check_event

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _sample(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["sqs-standard", "sqs-fifo", "sqs-sns", "sqs-standard-failing"])
def test_every_sqs_sample_passes(name: str) -> None:
    records = _sample(name)["Records"]
    assert check_records(records) is records


@pytest.mark.parametrize(("change", "message"), [
    ({"messageId": 7}, "Records[1].messageId: not a JSON string"),
    ({"body": None}, "Records[1].body: not a JSON string"),
    ({"attributes": "x"}, "Records[1].attributes: not a JSON object"),
])
def test_an_sqs_field_of_the_wrong_type_is_named(change: dict[str, Any], message: str) -> None:
    records = _sample("sqs-fifo")["Records"]
    records[1].update(change)
    with pytest.raises(MalformedEvent) as raised:
        check_records(records)
    assert str(raised.value).startswith(message)


def test_a_record_that_is_not_an_object_is_named() -> None:
    with pytest.raises(MalformedEvent, match=r"^Records\[0\]: a JSON list, not an SQS record"):
        check_records([[]])


def test_missing_attribute_counts_read_as_a_first_delivery() -> None:
    from handler.aws.sqs import SQSRecord

    record = SQSRecord({"messageId": "m", "body": "{}", "attributes": {}})
    assert record.attributes.approximate_receive_count == "" and record.attributes.sent_timestamp == ""


@pytest.mark.parametrize(("name", "kind"), [("http-api-v2", "v2"), ("rest-api-v1", "v1"), ("function-url", "url"),
                                           ("http-api-v2-failing", "v2"), ("rest-api-v1-failing", "v1")])
def test_every_http_sample_passes(name: str, kind: str) -> None:
    check_event(_sample(name), kind)


@pytest.mark.parametrize(("name", "kind", "change", "message"), [
    ("rest-api-v1", "v1", {"httpMethod": 5}, "httpMethod: not a string in a REST API (payload 1.0) event"),
    ("http-api-v2", "v2", {"requestContext": {"http": {"method": "PATCH"}}},
     "requestContext.stage: missing in an HTTP API (payload 2.0) event"),
    ("http-api-v2", "v2", {"requestContext": {"http": "PATCH", "stage": "$default"}},
     "requestContext.http.method: missing in an HTTP API (payload 2.0) event"),
    ("function-url", "url", {"body": {"TaskID": 1}}, "body: a JSON dict, not a string, in a function URL event"),
])
def test_an_http_field_the_route_reads_is_named(name: str, kind: str, change: dict[str, Any], message: str) -> None:
    event = {**_sample(name), **change}
    with pytest.raises(MalformedEvent) as raised:
        check_event(event, kind)
    assert str(raised.value) == message
