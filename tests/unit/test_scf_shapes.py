"""The SCF entry's pieces that need no server: deadline, shapes, API Gateway translation, record ids."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

import pytest

from handler.compat import UTC
from handler.model import format_issued_at
from handler.runtime import Runtime
from handler.scf import entry as scf
from handler.scf import http as scf_apigw
from handler.scf import queue as scf_queue
from tests.support.scf import sample


@pytest.mark.parametrize(("context", "until"), [
    ({"time_limit_in_ms": 10_000}, 108.0),  # 10 s from the start, less the 2 s margin
    ({"time_limit_in_ms": 1_500}, 100.0),  # never before the start
    ({}, 158.0), ({"time_limit_in_ms": True}, 158.0), ({"time_limit_in_ms": "900"}, 158.0),  # local default 60 s
])
def test_deadline_is_the_time_limit_from_the_invocation_start(context: dict[str, Any], until: float) -> None:
    assert scf.deadline(context, started=100.0) == until


@pytest.mark.parametrize(("name", "kind"), [
    ("ckafka", "ckafka"), ("ckafka-failing", "ckafka"), ("cmq-topic", "cmq"), ("cmq-topic-failing", "cmq"),
    ("tdmq", "tdmq"), ("tdmq-failing", "tdmq"), ("timer", None), ("apigw", None), ("function-url", None),
    ("eventbridge-batch", "eventlist"), ("eventbridge-batch-failing", "eventlist"),
])
def test_queue_shapes(name: str, kind: str | None) -> None:
    assert scf_queue.kind_of(sample(name)) == kind
    assert scf.is_apigw(sample(name)) == name.startswith("apigw")
    assert scf.is_function_url(sample(name)) == name.startswith("function-url")


def test_an_eventbridge_batch_is_one_message_per_event_in_order() -> None:
    got = scf_queue.messages("eventlist", sample("eventbridge-batch"))
    assert [m.id for m in got] == ["tdmq:persistent://1250000000/timpush/modifications/123345361",
                                   "tdmq:persistent://1250000000/timpush/modifications/123345362"]
    assert [m.issued for m in got] == ["1764489600000", "1764489600500"]
    assert [m.where for m in got] == ["EventList[0].data", "EventList[1].data"]


def test_message_ids_name_the_trigger_and_the_message() -> None:
    assert [m.id for m in scf_queue.messages("ckafka", sample("ckafka"))] == [
        "ckafka:timpush-modifications/0/36", "ckafka:timpush-modifications/0/37"]
    (cmq,) = scf_queue.messages("cmq", sample("cmq-topic"))
    assert cmq.id == "cmq:timpush-modifications/123345346" and cmq.issued == "2026-11-30T08:00:00.250Z"
    (tdmq,) = scf_queue.messages("tdmq", sample("tdmq"))
    assert tdmq.id == "tdmq:persistent://1250000000/timpush/modifications/123345348"
    assert tdmq.issued == "1764489600000" and tdmq.body == sample("tdmq")["data"]["msgBody"]


@pytest.mark.parametrize(("event", "named"), [
    ({"Type": "timer"}, "an object with keys ['Type']"),
    ({"Records": []}, "an object with keys ['Records']"),
    ({"Records": [{"cmq": {}}]}, "Records[0] with keys ['cmq']"),
    ({"requestContext": {"http": {}}}, "an object with keys ['requestContext']"),
    ({"data": {"body": "x"}}, "an object with keys ['data']"),
    ("text", "a JSON str"),
])
def test_unrecognised_events_are_named(event: Any, named: str) -> None:
    with pytest.raises(scf.UnrecognisedEvent) as raised:
        scf.route(event, {}, cast(Runtime, None), 0.0)
    assert named in str(raised.value) and "Timer" in str(raised.value)


def test_api_gateway_event_becomes_a_rest_request_for_the_route() -> None:
    event = sample("apigw")
    event["path"] = "/timpush/sched-tasks/1234567892"  # an API whose path carries a prefix
    event["queryString"] = {"dry": True, "tag": ["a", "b"]}
    rest = scf_apigw.as_rest_v1(event)
    assert rest["path"] == "/sched-tasks/1234567892" and rest["httpMethod"] == "PATCH"
    assert rest["queryStringParameters"] == {"dry": "", "tag": "b"}
    assert rest["body"] == event["body"]
    assert rest["requestContext"]["requestId"] == event["requestContext"]["requestId"]
    del event["pathParameters"]
    assert scf_apigw.as_rest_v1(event)["path"] == "/timpush/sched-tasks/1234567892"


def test_integration_response_has_single_value_headers() -> None:
    answer = {"statusCode": 429, "body": json.dumps({"ErrorCode": 60007}), "isBase64Encoded": False,
              "multiValueHeaders": {"Content-Type": ["application/json"], "Retry-After": ["1"]}}
    assert scf_apigw.integration_response(answer) == {
        "isBase64Encoded": False, "statusCode": 429,
        "headers": {"Content-Type": "application/json", "Retry-After": "1"}, "body": answer["body"]}


RECEIVED = datetime(2026, 12, 1, 12, 0, 0, 500_000, tzinfo=UTC)


@pytest.mark.parametrize(("given", "issued"), [
    ("2026-11-30T08:00:00.250Z", "2026-11-30T08:00:00.250Z"),  # CMQ publishTime
    ("2026-11-30T16:00:00+08:00", "2026-11-30T08:00:00.000Z"),
    ("1764489600000", "2025-11-30T08:00:00.000Z"),  # TDMQ time, epoch milliseconds
    (None, "2026-12-01T12:00:00.500Z"),  # CKafka: the receipt
    ("yesterday", "2026-12-01T12:00:00.500Z"),
    ("2026-11-30 08:00:00", "2026-12-01T12:00:00.500Z"),  # no offset: not an issue time
    ("2031-01-01T00:00:00Z", "2026-12-01T12:00:00.500Z"),  # never after the receipt
])
def test_issue_time_is_the_events_else_the_receipt(given: str | None, issued: str) -> None:
    assert format_issued_at(scf_queue.issue_time(given, RECEIVED)) == issued
