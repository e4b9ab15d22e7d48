"""SCF's dead letters coming back: ``timpush redrive --from tdmq-cmq:`` and the maintenance Timer, against the
fake TDMQ for CMQ data-flow API (signatures checked, receive/delete semantics) and a stub IM API on loopback."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from handler import main_handler, runtime
from handler.deadletter import cmq as cmq_dataflow
from handler.deadletter.record import Source, record
from handler.im.codes import Origin, classify
from handler.observability import logger
from handler.order.key import Stamp
from handler.outcome import Outcome, Status
from handler.scf import maintenance as scf_maintenance
from handler.sources.maintenance import MAX_REDRIVES
from tests.fakes.cmq_dataflow import FakeCmq
from tests.fakes.im_stub import ImStub, im_stub
from tests.fakes.moto_sqs import MotoSqs, free_port
from tests.fakes.silent_server import SilentServer
from tests.support.lambda_events import ids_by_digest
from timpush.cli import main
from timpush.context import scf_context

pytestmark = pytest.mark.integration

TC_ID, TC_KEY, TC_TOKEN = "AKIDscfrole0002", "scf-role-secret-key-71aa", "scf-session-token-0e5c"
QUEUE = "timpush-dead-letters"
SPEC = f"tdmq-cmq:ap-guangzhou/{QUEUE}"
FUTURE = "2030-06-15 14:00:00"


@pytest.fixture
def cmq(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCmq]:
    with FakeCmq(credentials={TC_ID: TC_KEY}, require_token=TC_TOKEN) as fake:
        fake.create_queue(QUEUE)
        for name, value in {"TENCENTCLOUD_SECRETID": TC_ID, "TENCENTCLOUD_SECRETKEY": TC_KEY,
                            "TENCENTCLOUD_SESSIONTOKEN": TC_TOKEN, cmq_dataflow.ENDPOINT_VAR: fake.endpoint,
                            "NO_PROXY": "127.0.0.1,localhost"}.items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def im(cmq: FakeCmq, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImStub]:
    with im_stub() as stub:
        for name, value in {"IM_SECRET_KEY": "test-key-not-secret", "IM_SDKAPPID": "1400000001",
                            "IM_ENDPOINT": stub.endpoint, "IM_MAX_ATTEMPTS": "1", "DEAD_LETTER": SPEC}.items():
            monkeypatch.setenv(name, value)
        for name in ("DEAD_LETTER_ROUTES", "IM_SECRET_SOURCE", "IM_APPS", "IM_STATE_STORE"):
            monkeypatch.delenv(name, raising=False)
        runtime.reset()
        yield stub
        runtime.reset()


def letter(task_id: int, code: int, issued: str = "2030-06-01T08:00:00.000Z", redrives: int = 0) -> str:
    raw = json.dumps({"TaskID": task_id, "Type": "All", "SchedAt": FUTURE})
    outcome = Outcome(Status.FAILED, raw, json.loads(raw), code, "failed", classify(code), Origin.REMOTE, 1)
    doc: dict[str, Any] = {**record(outcome, Source("scf", f"ckafka:mods/0/{task_id}")), "issued_at": issued}
    if redrives:
        doc["redrives"] = redrives
    return json.dumps(doc)


def task_ids(cmq: FakeCmq) -> list[int | None]:
    """The TaskID of each message left in the queue (None for one that is not a record)."""
    out: list[int | None] = []
    for body in cmq.bodies(QUEUE):
        try:
            out.append(json.loads(json.loads(body)["raw"])["TaskID"])
        except (ValueError, KeyError):
            out.append(None)
    return out


# --- timpush redrive --from tdmq-cmq: -------------------------------------------------------------------------


def test_redrive_direct_applies_the_chosen_and_deletes_only_those(cmq: FakeCmq, im: ImStub) -> None:
    # Given SCF's queue with two retryable letters, an invalid one and a message that is not a record
    for body in (letter(1, -1), letter(2, 90104), "not a dead letter", letter(3, 70500)):
        cmq.put(QUEUE, body)
    # When the retryable ones are applied now
    assert main(["redrive", "--from", SPEC, "--to", "direct", "--without-store", "--class", "retryable"]) == 0
    # Then the API saw 1 and 3; the queue keeps the invalid one and the unparsable message, nothing else
    assert sorted(im.seen) == [1, 3]
    assert task_ids(cmq) == [2, None]
    assert "DeleteMessage" in cmq.actions()


def test_redrive_direct_writes_a_new_failure_back_with_its_count_and_does_not_reapply_it(
        cmq: FakeCmq, im: ImStub) -> None:
    im.answers[5] = 70500  # still failing
    cmq.put(QUEUE, letter(5, 70500, redrives=1))
    main(["redrive", "--from", SPEC, "--to", "direct", "--without-store"])
    assert im.seen == [5]  # once, though its new dead letter went into the queue being read
    (body,) = cmq.bodies(QUEUE)
    doc = json.loads(body)
    assert (doc["error"]["code"], doc["redrives"], doc["source"]["kind"]) == (70500, 2, "redrive")


def test_redrive_to_the_work_queue_moves_the_raw_bodies(cmq: FakeCmq, sqs_env: MotoSqs) -> None:
    work = sqs_env.create_queue("work")
    for body in (letter(7, 90106), letter(8, 90104), "{}"):
        cmq.put(QUEUE, body)
    assert main(["redrive", "--from", SPEC, "--to", f"sqs:{work}", "--code", "90106"]) == 0
    moved = [json.loads(m["Body"]) for m in sqs_env.drain(work)]
    assert [m["TaskID"] for m in moved] == [7]
    assert task_ids(cmq) == [8, None]


def test_a_dry_run_deletes_nothing(cmq: FakeCmq, im: ImStub, capsys: pytest.CaptureFixture[str]) -> None:
    cmq.put(QUEUE, letter(9, -1))
    assert main(["redrive", "--from", SPEC, "--to", "direct", "--without-store", "--dry-run"]) == 0
    assert im.seen == [] and task_ids(cmq) == [9] and "DeleteMessage" not in cmq.actions()
    assert "would move" in capsys.readouterr().out


def test_a_bad_queue_name_exits_2(cmq: FakeCmq, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["redrive", "--from", "tdmq-cmq:guangzhou/q", "--to", "direct", "--without-store"]) == 2
    assert "REGION/QUEUE" in capsys.readouterr().err


# --- the maintenance Timer -------------------------------------------------------------------------------------


def maintenance() -> dict[str, Any]:
    timer = {"Type": "Timer", "TriggerName": "maintenance", "Time": "2030-06-01T09:00:00Z", "Message": "maintenance"}
    result: dict[str, Any] = main_handler(timer, scf_context(30))
    return result


def test_the_maintenance_timer_applies_retryable_letters_in_order_of_issue_time(cmq: FakeCmq, im: ImStub) -> None:
    # Given retryable letters issued out of queue order, one at its redrive limit, an invalid one,
    # a message that cannot be parsed, and one that fails again
    im.answers[16] = 70500
    for body in (letter(11, -1, issued="2030-06-01T08:00:03.000Z"),
                 "{\"kind\": \"timpush.dead-letter\", broken",
                 letter(12, 60007, issued="2030-06-01T08:00:01.000Z"),
                 letter(13, -2, redrives=MAX_REDRIVES),
                 letter(14, 90104),
                 letter(16, 70500, issued="2030-06-01T08:00:02.000Z")):
        cmq.put(QUEUE, body)
    # When SCF's maintenance Timer fires
    summary = maintenance()
    # Then the due ones are applied oldest change first; the rest are kept and counted
    assert im.seen == [12, 16, 11]
    assert summary == {"redriven": 3, "failed_again": 1, "kept": 2, "kept_at_limit": 1}
    left = task_ids(cmq)
    assert sorted(left, key=str) == sorted([None, 13, 14, 16], key=str)
    again = [json.loads(b) for b in cmq.bodies(QUEUE) if '"redrives":1' in b]
    assert [json.loads(d["raw"])["TaskID"] for d in again] == [16]


def test_the_kept_ones_come_back_after_the_visibility_timeout_and_are_kept_again(cmq: FakeCmq, im: ImStub) -> None:
    cmq.put(QUEUE, "garbage")
    cmq.put(QUEUE, letter(21, -1, redrives=MAX_REDRIVES))
    assert maintenance() == {"redriven": 0, "failed_again": 0, "kept": 1, "kept_at_limit": 1}
    assert maintenance() == {"redriven": 0, "failed_again": 0, "kept": 0, "kept_at_limit": 0}  # still hidden
    cmq.advance(31)
    assert maintenance() == {"redriven": 0, "failed_again": 0, "kept": 1, "kept_at_limit": 1}
    assert len(cmq.bodies(QUEUE)) == 2 and im.seen == []


def test_maintenance_idles_when_retryable_letters_go_elsewhere(cmq: FakeCmq, im: ImStub, tmp_path: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEAD_LETTER_ROUTES", json.dumps({"retryable": f"file:{tmp_path / 'r.jsonl'}"}))
    runtime.reset()
    cmq.put(QUEUE, letter(31, -1))
    assert maintenance() == {"redriven": 0, "failed_again": 0, "kept": 0, "kept_at_limit": 0}
    assert cmq.actions() == [] and im.seen == []


def test_throttled_receives_back_off_and_the_job_goes_on(cmq: FakeCmq, im: ImStub,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cmq_dataflow, "BACKOFF_BASE", 0.01)
    cmq.put(QUEUE, letter(41, -1))
    cmq.throttle(2)
    assert maintenance()["redriven"] == 1 and im.seen == [41] and cmq.bodies(QUEUE) == []


def test_a_redrive_keeps_the_order_of_two_changes_of_one_millisecond(cmq: FakeCmq, im: ImStub) -> None:
    # Given two changes of one task made in the same millisecond: their ids decide which is newer (DESIGN "Order"),
    # both dead-lettered as retryable, the newer one first in the queue
    older, newer = ids_by_digest(2)
    sources = _sources_ordered_the_other_way()
    for by, sched_at, source in ((newer, "2031-02-02 10:00:00", sources[0]),
                                 (older, "2031-01-01 09:00:00", sources[1])):
        raw = json.dumps({"TaskID": 51, "Type": "All", "SchedAt": sched_at})
        outcome = Outcome(Status.FAILED, raw, json.loads(raw), -1, "failed", classify(-1), Origin.TRANSPORT, 1)
        cmq.put(QUEUE, json.dumps({**record(outcome, Source("scf", source)), "issued_at": "2030-06-01T08:00:00.000Z",
                                   "issued_by": f"sqs:{by}"}))
    # When SCF's maintenance Timer applies them again
    assert maintenance()["redriven"] == 2
    # Then the task ends with the newer change, whatever order the queue gave them in
    assert [body["SchedAt"] for body in im.bodies][-1] == "2031-02-02 10:00:00"
    assert [body["SchedAt"] for body in im.bodies] == ["2031-01-01 09:00:00", "2031-02-02 10:00:00"]


def _sources_ordered_the_other_way() -> tuple[str, str]:
    """Two source ids whose own order (as ``redrive:ID``) is the reverse of the changes' ids: a redrive that ordered
    by them, rather than by the key the record keeps, would let the older change win."""
    for n in range(100):
        first, second = f"ckafka:mods/0/{n}", f"ckafka:mods/0/{n + 1}"
        if Stamp(0, f"redrive:{first}").key < Stamp(0, f"redrive:{second}").key:
            return first, second
    raise AssertionError("no two such ids")


# --- a queue that cannot be reached ---------------------------------------------------------------------------


def _stopped_run(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The Timer with the queue at ``endpoint``: (its answer, the run's one log line, data-flow requests sent)."""
    monkeypatch.setenv(cmq_dataflow.ENDPOINT_VAR, endpoint)
    runtime.reset()
    sent: list[str] = []
    post = cmq_dataflow.SESSION.post

    def counting(url: str, **kwargs: Any) -> Any:
        sent.append(kwargs["data"]["Action"])
        return post(url, **kwargs)

    monkeypatch.setattr(cmq_dataflow.SESSION, "post", counting)
    log = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", log)
    result = maintenance()
    [line] = [json.loads(x) for x in log.getvalue().splitlines() if '"maintenance ' in x]
    return result, line, len(sent)


def test_a_refused_queue_stops_the_maintenance_timer_at_its_first_call(cmq: FakeCmq, im: ImStub,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    result, line, sent = _stopped_run(f"http://127.0.0.1:{free_port()}", monkeypatch)
    counts = {"redriven": 0, "failed_again": 0, "kept": 0, "kept_at_limit": 0}
    assert result == {**counts, "stopped": f"{SPEC}: connection refused or dropped"}
    assert sent == 1  # the queue out of reach ends the run; the next Timer is the retry
    assert line["level"] == "WARNING" and line["message"] == f"maintenance stopped: {result['stopped']}"
    assert line["summary"] == counts and im.seen == []


def test_a_queue_that_never_answers_stops_the_timer_within_one_calls_timeouts(
        cmq: FakeCmq, im: ImStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scf_maintenance.CmqLetters, "call_time", 1.5)  # the call's bound: its timeouts, total
    with SilentServer() as silent:
        result, line, sent = _stopped_run(silent.url, monkeypatch)
        assert silent.accepted == 1 and sent == 1
    assert result["stopped"] == f"{SPEC}: no answer (read timed out)"
    assert line["message"] == f"maintenance stopped: {result['stopped']}"


def test_a_data_flow_call_is_bounded_by_the_time_it_is_given() -> None:
    timeout = cmq_dataflow.bounded(1.5, cmq_dataflow.READ_TIMEOUT + 1)
    assert (timeout.connect_timeout, timeout.total) == (1.5, 1.5)
