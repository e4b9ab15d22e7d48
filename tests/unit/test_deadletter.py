"""Dead letters without a network: the record, the routes, the file sink, the SQS message shape."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handler.config import ConfigError, load
from handler.deadletter import DeadLetters, open_sink
from handler.deadletter import sqs as deadletter_sqs
from handler.deadletter.file import FileSink
from handler.deadletter.record import DeadLetterError, Source, record, redrive_count, redrives_of
from handler.im.codes import ErrorClass, Origin
from handler.outcome import Outcome, Status

RAW = '{"TaskID": 1234567890, "Type": "All", "SchedAt": "2030-06-15 14:00:00"}'
REQUEST = {"TaskID": 1234567890, "Type": "All", "SchedAt": "2030-06-15 14:00:00"}


def _outcome(code: int = 90106, error_class: ErrorClass = ErrorClass.TOO_LATE, raw: str = RAW) -> Outcome:
    return Outcome(Status.FAILED, raw, dict(REQUEST), code, "modify failed: task dispatched", error_class,
                   Origin.REMOTE, attempts=1)


def test_record_has_exactly_the_design_keys() -> None:
    doc = record(_outcome(), Source("sqs", "msg-1", 1), now=datetime(2030, 6, 1, 8, 0, tzinfo=UTC))
    assert doc == {
        "kind": "timpush.dead-letter", "version": 1,
        "error": {"code": 90106, "info": "modify failed: task dispatched", "class": "too_late",
                  "origin": "remote"},
        "request": REQUEST,
        "raw": RAW,
        "source": {"kind": "sqs", "id": "msg-1", "receive_count": 1},
        "attempts": 1, "failed_at": "2030-06-01T08:00:00Z",
    }
    assert json.loads(json.dumps(doc)) == doc


def test_record_of_text_that_is_not_json_keeps_it_and_has_null_request() -> None:
    outcome = Outcome(Status.FAILED, "not json {", None, 90104, "payload: not JSON", ErrorClass.INVALID,
                      Origin.LOCAL)
    doc = record(outcome, Source("direct", "req-1"))
    assert (doc["raw"], doc["request"], doc["source"]) == ("not json {", None, {"kind": "direct", "id": "req-1"})
    assert doc["error"]["origin"] == "local"


def test_redrives_written_only_when_positive() -> None:
    assert "redrives" not in record(_outcome(), Source("sqs", "m"))
    assert "redrives" not in record(_outcome(), Source("sqs", "m"), redrives=0)
    doc = record(_outcome(), Source("sqs", "m"), redrives=2)
    assert doc["redrives"] == 2
    assert redrives_of(doc) == 2
    assert redrives_of({"redrives": True}) == 0
    assert redrives_of({"redrives": -3}) == 0


@pytest.mark.parametrize(
    ("attributes", "count"),
    [
        (None, 0),
        ({}, 0),
        ({"Redrives": {"stringValue": "2", "dataType": "Number", "stringListValues": []}}, 2),  # Lambda event
        ({"Redrives": {"StringValue": "3", "DataType": "Number"}}, 3),  # boto3 receive_message
        ({"Redrives": {"stringValue": "many", "dataType": "String"}}, 0),
        ({"Redrives": {"stringValue": "-4", "dataType": "Number"}}, 0),
        ({"Redrives": "2"}, 0),
        ({"Other": {"stringValue": "2"}}, 0),
    ],
)
def test_redrive_count_reads_both_attribute_shapes(attributes: dict[str, object] | None, count: int) -> None:
    assert redrive_count(attributes) == count


def test_code_route_beats_class_route_beats_default() -> None:
    routes = DeadLetters("file:default.jsonl", {"too_late": "file:late.jsonl", "90106": "file:dispatched.jsonl",
                                                 "-1": "sqs:http://q/conn"})
    assert routes.route(90106, "too_late") == "file:dispatched.jsonl"
    assert routes.route(90110, "too_late") == "file:late.jsonl"
    assert routes.route(90104, "invalid") == "file:default.jsonl"
    assert routes.route(-1, "retryable") == "sqs:http://q/conn"
    assert routes.class_route("retryable") == "file:default.jsonl"  # a code route is not the class's queue
    assert routes.class_route("too_late") == "file:late.jsonl"


def test_send_writes_each_record_to_its_route(tmp_path: Path) -> None:
    late, bad, default = (str(tmp_path / n) for n in ("late.jsonl", "bad.jsonl", "default.jsonl"))
    routes = DeadLetters(f"file:{default}", {"too_late": f"file:{late}", "90104": f"file:{bad}"})
    docs = [record(_outcome(90106, ErrorClass.TOO_LATE), Source("direct")),
            record(_outcome(90104, ErrorClass.INVALID), Source("direct")),
            record(_outcome(-1, ErrorClass.RETRYABLE), Source("direct")),
            record(_outcome(90110, ErrorClass.TOO_LATE), Source("direct"))]
    assert routes.send(docs) == [f"file:{late}", f"file:{bad}", f"file:{default}", f"file:{late}"]
    assert [json.loads(x)["error"]["code"] for x in Path(late).read_text().splitlines()] == [90106, 90110]
    assert [json.loads(x)["error"]["code"] for x in Path(bad).read_text().splitlines()] == [90104]
    assert [json.loads(x)["error"]["code"] for x in Path(default).read_text().splitlines()] == [-1]


def test_file_sink_concurrent_writers_produce_whole_json_lines(tmp_path: Path) -> None:
    # Given records far larger than a write buffer, written by many threads through separate sinks
    path = str(tmp_path / "dl.jsonl")
    writers, per_writer = 8, 25
    big = "x" * 20_000

    def write(writer: int) -> None:
        sink = FileSink(path)
        for n in range(per_writer):
            sink.write([record(_outcome(raw=json.dumps({"w": writer, "n": n, "pad": big})), Source("direct"))])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every line is one whole record and none is missing
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    raws = [json.loads(json.loads(line)["raw"]) for line in lines]
    assert sorted((r["w"], r["n"]) for r in raws) == [(w, n) for w in range(writers) for n in range(per_writer)]


def test_file_sink_writers_wait_for_the_path_lock(tmp_path: Path) -> None:
    # Given the lock redrive takes to rewrite the file, held
    path = str(tmp_path / "dl.jsonl")
    writer = threading.Thread(target=FileSink(path).write, args=([record(_outcome(), Source("direct"))],))
    with FileSink.lock_for(str(tmp_path / "." / "dl.jsonl")):  # the same file by another spelling
        writer.start()
        writer.join(timeout=0.3)
        # Then a writer waits for it
        assert writer.is_alive()
        assert not Path(path).exists()
    writer.join(timeout=5)
    assert len(Path(path).read_text().splitlines()) == 1


def test_file_sink_failure_is_a_dead_letter_error(tmp_path: Path) -> None:
    with pytest.raises(DeadLetterError, match="file:"):
        FileSink(str(tmp_path)).write([record(_outcome(), Source("direct"))])  # a directory


def test_sqs_sink_opens_without_touching_the_network() -> None:
    deadletter_sqs.forget_clients()
    sink = open_sink("sqs:https://sqs.eu-west-1.amazonaws.com/123456789012/dlq.fifo")
    assert sink.name == "sqs:https://sqs.eu-west-1.amazonaws.com/123456789012/dlq.fifo"
    assert deadletter_sqs._CLIENTS == {}  # built on the first write, not before
    with pytest.raises(ValueError, match="unknown dead-letter sink"):
        open_sink("s3:bucket")


def test_dead_letter_message_attributes_group_and_dedup() -> None:
    doc = record(_outcome(), Source("sqs", "msg-1", 2))
    message = deadletter_sqs.dead_letter_message(doc)
    assert dict(message.attributes) == {"ErrorCode": 90106, "ErrorClass": "too_late", "TaskID": "1234567890",
                                        "Source": "sqs"}
    assert message.group == "1234567890"
    assert len(message.dedup) == 64 and message.dedup.isalnum()
    assert json.loads(message.body) == doc
    # the same failure of the same message gives the same id; another source or round does not
    assert deadletter_sqs.dead_letter_message(dict(doc)).dedup == message.dedup
    assert deadletter_sqs.dead_letter_message({**doc, "source": {"kind": "sqs", "id": "msg-2"}}).dedup != \
        message.dedup
    assert deadletter_sqs.dead_letter_message({**doc, "redrives": 1}).dedup != message.dedup


def test_dead_letter_message_without_a_usable_task_id() -> None:
    outcome = Outcome(Status.FAILED, "[", None, 90104, "not JSON", ErrorClass.INVALID, Origin.LOCAL)
    message = deadletter_sqs.dead_letter_message(record(outcome, Source("direct")))
    assert "TaskID" not in message.attributes
    assert message.group == "unknown"
    for bad in (True, -5, "12ab", {"x": 1}):
        assert deadletter_sqs.task_id_of({"request": {"TaskID": bad}}) is None
    assert deadletter_sqs.task_id_of({"request": {"TaskID": "42"}}) == "42"


def test_sqs_body_is_ascii_even_for_text_sqs_refuses() -> None:
    doc = record(_outcome(raw='{"Title": "\ufffe 推送"}'), Source("direct"))
    body = deadletter_sqs.dead_letter_message(doc).body
    assert body.isascii()
    assert json.loads(body)["raw"] == '{"Title": "\ufffe 推送"}'


def test_batches_split_by_count_and_by_size() -> None:
    small = [deadletter_sqs.Outgoing("x" * 100) for _ in range(23)]
    assert [len(c) for c in deadletter_sqs._chunks(small)] == [10, 10, 3]
    large = [deadletter_sqs.Outgoing("x" * 100_000) for _ in range(5)]
    assert [len(c) for c in deadletter_sqs._chunks(large)] == [2, 2, 1]
    huge = [deadletter_sqs.Outgoing("x" * 300_000), deadletter_sqs.Outgoing("y")]
    assert [len(c) for c in deadletter_sqs._chunks(huge)] == [1, 1]  # SQS says no for the first, alone


def test_work_message_counts_the_redrive() -> None:
    doc = {**record(_outcome(), Source("sqs", "m1")), "redrives": 1}
    message = deadletter_sqs.work_message(doc)
    assert (message.body, dict(message.attributes), message.group) == (RAW, {"Redrives": 2}, "1234567890")


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/dlq", "eu-west-1"),
        ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/dlq", "cn-north-1"),
        ("http://127.0.0.1:5000/123456789012/dlq", None),
        ("https://eu-central-1.queue.amazonaws.com/123456789012/dlq", "eu-central-1"),
        ("https://queue.amazonaws.com/123456789012/dlq", "us-east-1"),
    ],
)
def test_region_from_queue_url(url: str, region: str | None) -> None:
    assert deadletter_sqs._region_of(url) == region


BASE = {"IM_SECRET_KEY": "k", "IM_SDKAPPID": "1400000001"}


def test_routes_accept_class_and_code_keys_with_both_sink_kinds() -> None:
    routes = {"too_late": "sqs:https://sqs.us-east-1.amazonaws.com/1/late", "-1": "file:conn.jsonl",
              "90104": "file:bad.jsonl"}
    assert load({**BASE, "DEAD_LETTER_ROUTES": json.dumps(routes)}).dead_letter_routes == routes
    assert load({**BASE, "DEAD_LETTER_ROUTES": " "}).dead_letter_routes == {}


@pytest.mark.parametrize(
    "routes",
    ['["too_late"]', '{"too_late": "sqs:"}', '{"too_late": "file:"}', '{"9010x": "file:a"}', '{"": "file:a"}'],
)
def test_bad_routes_fail_at_load_naming_the_variable(routes: str) -> None:
    with pytest.raises(ConfigError, match="DEAD_LETTER_ROUTES"):
        load({**BASE, "DEAD_LETTER_ROUTES": routes})


class _StubSqs:
    """Stands in for the boto3 client: refuses the entries named in ``refuse``, or raises ``error``."""

    def __init__(self, refuse: frozenset[str] = frozenset(), error: Exception | None = None) -> None:
        self.refuse, self.error = refuse, error
        self.calls: list[list[dict[str, object]]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, object]]) -> dict[str, object]:  # noqa: N803
        self.calls.append(Entries)
        if self.error:
            raise self.error
        failed = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in Entries
                  if e["Id"] in self.refuse]
        return {"Successful": [], "Failed": failed}


def _with_stub(monkeypatch: pytest.MonkeyPatch, stub: _StubSqs) -> None:
    monkeypatch.setattr(deadletter_sqs, "client_for", lambda url, config=None: stub)


def test_partial_batch_failure_names_queue_and_count_never_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    stub = _StubSqs(refuse=frozenset({"3", "12"}))
    _with_stub(monkeypatch, stub)
    docs = [record(_outcome(raw=f'{{"TaskID": {n}, "secret-ish": "BODYTEXT"}}'), Source("direct")) for n in range(15)]
    with pytest.raises(DeadLetterError) as caught:
        deadletter_sqs.SqsSink("http://127.0.0.1:9/1/dlq").write(docs)
    assert str(caught.value) == "sqs:http://127.0.0.1:9/1/dlq: 2 of 15 dead letter(s) refused by SQS"
    assert [len(c) for c in stub.calls] == [10, 5]
    assert [e["Id"] for e in stub.calls[1]] == ["10", "11", "12", "13", "14"]  # ids are unique per write


def test_client_error_becomes_dead_letter_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessageBatch")
    _with_stub(monkeypatch, _StubSqs(error=denied))
    with pytest.raises(DeadLetterError, match=r"dlq: 1 message\(s\) not sent .*AccessDenied") as caught:
        deadletter_sqs.SqsSink("http://127.0.0.1:9/1/dlq").write([record(_outcome(), Source("direct"))])
    assert RAW not in str(caught.value)
    _with_stub(monkeypatch, _StubSqs(error=EndpointConnectionError(endpoint_url="http://127.0.0.1:9")))
    with pytest.raises(DeadLetterError, match="EndpointConnectionError"):
        deadletter_sqs.SqsSink("http://127.0.0.1:9/1/dlq").write([record(_outcome(), Source("direct"))])


def test_issued_at_travels_with_the_record_and_back_to_the_work_queue() -> None:
    from handler.deadletter.record import issued_at_attribute
    from handler.order.travel import issued_time

    when = datetime(2030, 5, 31, 23, 59, 58, 250_000, tzinfo=UTC)
    doc = record(_outcome()._replace(issued_at=when), Source("sqs", "m1"))
    assert doc["issued_at"] == "2030-05-31T23:59:58.250Z"
    assert deadletter_sqs.dead_letter_message(doc).attributes["IssuedAt"] == "2030-05-31T23:59:58.250Z"
    # a record without the rest of its key (one written before it travelled): its id was sqs:MESSAGE_ID
    assert dict(deadletter_sqs.work_message(doc).attributes) == {
        "Redrives": 1, "IssuedAt": "2030-05-31T23:59:58.250Z", "IssuedBy": "sqs:m1", "IssuedSeq": "0", "IssuedPos": 0}
    assert issued_time(doc["issued_at"]) == when
    assert issued_at_attribute({"IssuedAt": {"stringValue": doc["issued_at"], "dataType": "String"}}) == when
    assert issued_at_attribute({"IssuedAt": {"StringValue": doc["issued_at"], "DataType": "String"}}) == when


@pytest.mark.parametrize("value", [None, 5, "", "yesterday", "2030-05-31T23:59:58", "2030-05-31 23:59:58Z"])
def test_an_unreadable_issued_at_is_no_issue_time(value: object) -> None:
    from handler.deadletter.record import issued_at_attribute
    from handler.order.travel import issued_time

    assert issued_time(value) is None
    assert issued_at_attribute({"IssuedAt": {"stringValue": value}}) is None


def test_the_whole_order_key_travels_from_the_failure_to_the_redriven_message() -> None:
    from handler.order.key import Issue
    from handler.order.travel import carried_issue, issue_of_record

    when = datetime(2030, 5, 31, 23, 59, 58, 250_000, tzinfo=UTC)
    seq = 18_889_999_999_999_999_999_999_999_999_999_999_999  # 38 digits: more than a double keeps
    issue = Issue(when, "sqs:first-id", seq=seq, pos=2)
    doc = record(_outcome()._replace(issued_at=when, stamp=issue.stamp(when, 2)), Source("sqs", "redriven-id"))
    assert (doc["issued_by"], doc["issued_seq"], doc["issued_pos"]) == ("sqs:first-id", str(seq), 2)
    assert issue_of_record(json.loads(json.dumps(doc)), datetime.now(UTC)) == issue
    # as a Lambda record's attributes after SQS gave the body a new id and SequenceNumber
    sent = deadletter_sqs.work_message(doc).attributes
    carried = carried_issue({name: {"stringValue": str(value), "dataType": "String"} for name, value in sent.items()})
    assert carried == issue and carried.stamp(carried.at, carried.pos).key == issue.stamp(when, 2).key


@pytest.mark.parametrize("attributes", [None, {}, {"IssuedAt": {"stringValue": "2030-05-31T23:59:58.250Z"}},
                                        {"IssuedBy": {"stringValue": "sqs:x"}},
                                        {"IssuedAt": {"stringValue": "yesterday"}, "IssuedBy": {"stringValue": "x"}}])
def test_a_message_without_a_readable_carried_key_carries_none(attributes: dict[str, Any] | None) -> None:
    from handler.order.travel import carried_issue

    assert carried_issue(attributes) is None


@pytest.mark.parametrize(("value", "read"), [("12", 12), (12, 12), ("-1", 0), (True, 0), ("1" * 41, 0), ("x", 0),
                                             (None, 0), ("9" * 40, 10 ** 40 - 1)])
def test_a_queue_order_is_read_only_when_it_fits_the_key(value: object, read: int) -> None:
    from handler.order.travel import queue_order

    assert queue_order(value) == read
