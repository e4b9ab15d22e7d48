"""Fault soak: hundreds of queue messages through the real SQS path while the IM server misbehaves.

The emulator injects every kind of fault at random; permanent failures are mixed in (refused locally,
a dispatched task, a Type mismatch the server finds). Messages the handler lists in
``batchItemFailures`` come back in later batches with their receive count raised, as SQS redelivers
them, until none is left. Every request the emulator sees carries the TaskID and a SchedAt unique to
its message, so its request log tells which message each request was sent for.

Speed: pacing stays on but scaled up (handler 100/s against a server limit of 150/s), so the run
takes seconds and "no 60007 except injected ones" still checks the pacer against a real limit; the
back-off and the pause after 60007 are shortened the same way.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from handler import lambda_handler
from tests.fakes.moto_sqs import MotoSqs
from tests.support.im import ADMIN, APP, KEY, add_task, dead_letters, modify_requests
from tests.support.lambda_events import (
    configure,
    failed_ids,
    sns_wrap,
    sqs_event,
    sqs_record,
    sqs_record_from_received,
)
from timpush.context import LocalContext
from timpush.emulator import Emulator, EmulatorSettings, Fault

pytestmark = pytest.mark.integration

MAX_RECEIVES = 5
MAX_ATTEMPTS = 2
BATCH = 10
STORM = [  # tried in this order; the first that fires wins (about 31% of requests fail)
    Fault(kind="internal_error", probability=0.10, api="modify"),
    Fault(kind="rate_limit", probability=0.06, api="modify"),
    Fault(kind="http_502", probability=0.08, api="modify"),
    Fault(kind="drop", probability=0.08, api="modify"),
    Fault(kind="not_envelope", probability=0.04, api="modify"),
    Fault(kind="slow", probability=0.05, delay=0.01, api="modify"),
]
# Poison messages only ever arrive during a full outage: one kind per delivery, the last a dropped connection.
OUTAGES = ["internal_error", "http_502", "rate_limit", "not_envelope", "drop"]
FIRST_SCHED = datetime(2031, 1, 1, tzinfo=UTC)
PLUS_8 = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Message:
    """One queue message; ``marker`` is the SchedAt (API form) its requests carry, ``expect`` its dead letter."""

    id: str
    body: str
    task: int | None
    marker: str
    expect: tuple[int, str, str] | None  # (code, class, origin); None: it must succeed

    @property
    def sendable(self) -> bool:
        return self.expect is None or self.expect[2] != "local"


@dataclass(frozen=True)
class Delivery:
    message: str
    receive_count: int
    retried: bool


@dataclass
class World:
    all: list[int]
    tag: list[int]
    user: list[int]
    dispatched: int


def marker(i: int) -> str:
    return (FIRST_SCHED + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S")


def iso(i: int) -> str:
    """The same instant as ``marker(i)`` written as ISO 8601 at +08:00."""
    return (FIRST_SCHED + timedelta(minutes=i)).astimezone(PLUS_8).isoformat()


def good(i: int, world: World) -> tuple[dict[str, Any], int]:
    kind = i % 3
    if kind == 0:
        task = world.all[i % len(world.all)]
        return {"TaskID": task, "Type": "All", "SchedAt": marker(i),
                "Content": {"OfflinePushInfo": {"Title": f"soak {i}", "Desc": "é ✓"}}}, task
    if kind == 1:
        task = world.tag[i % len(world.tag)]
        return {"TaskID": str(task), "Type": "Tag", "SchedAt": iso(i),
                "Content": {"Condition": {"TagsOr": ["vip", f"t{i % 7}"]}}}, task
    task = world.user[i % len(world.user)]
    return {"TaskID": task, "Type": "User", "SchedAt": marker(i), "Content": {"To_Account": [f"user{i}"]}}, task


def message(i: int, world: World) -> Message:
    """The i-th message: one in four fails for good, in one of five ways."""
    mid = f"00000000-50a4-4000-8000-{i:012d}"
    slot = i % 20
    if slot == 0:  # a typo: refused locally, the body kept exactly
        body = json.dumps({"TaskID": world.all[0], "Type": "All", "SchedAT": marker(i)}, indent=2)
        return Message(mid, body, None, marker(i), (90104, "invalid", "local"))
    if slot == 1:
        body = json.dumps({"TaskID": world.all[0], "Type": "All", "SchedAt": "2020-01-01 00:00:00"})
        return Message(mid, body, None, marker(i), (90110, "too_late", "local"))
    if slot == 2:
        body = json.dumps({"TaskID": world.dispatched, "Type": "All", "SchedAt": marker(i)})
        return Message(mid, body, world.dispatched, marker(i), (90106, "too_late", "remote"))
    if slot == 3:  # an All task addressed as User: only the server knows the task's type
        body = json.dumps({"TaskID": world.all[1], "Type": "User", "SchedAt": marker(i)})
        return Message(mid, body, world.all[1], marker(i), (90104, "invalid", "remote"))
    if slot == 4:
        bad = '{"TaskID": 1, "Type": "All", "SchedAt": ' if i % 40 == 4 else json.dumps(
            {"TaskID": world.all[0], "Type": "All", "SchedAt": marker(i), "Content": {"To_Account": ["x"]}})
        return Message(mid, bad, None, marker(i), (90104, "invalid", "local"))
    mod, task = good(i, world)
    text = json.dumps(mod, ensure_ascii=False)
    return Message(mid, sns_wrap(text) if i % 7 == 0 else text, task, marker(i), None)


def poison(i: int, world: World) -> Message:
    mod, task = good(i, world)
    text = json.dumps(mod, separators=(",", ":"))
    return Message(f"00000000-9015-4000-8000-{i:012d}", sns_wrap(text) if i % 2 else text, task, marker(i),
                   (-1, "retryable", "transport"))


def make_world(emu: Emulator) -> World:
    soon = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 3))
    world = World([add_task(emu, "All") for _ in range(5)], [add_task(emu, "Tag") for _ in range(5)],
                  [add_task(emu, "User") for _ in range(5)], add_task(emu, "All", sched_at=soon))
    emu.advance(3600)  # the emulated clock moves on: that last task has been dispatched
    emu.clear_requests()
    return world


def handler_env(emu: Emulator, dead: Path) -> dict[str, str]:
    return {"IM_ENDPOINT": emu.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN,
            "DEAD_LETTER": f"file:{dead}", "IM_RATE_LIMIT": "100", "IM_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "IM_MAX_RECEIVES": str(MAX_RECEIVES)}


@pytest.fixture
def soak_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    monkeypatch.setattr("handler.im.retry.BACKOFF_BASE", 0.002)
    monkeypatch.setattr("handler.im.retry.RATE_LIMIT_PAUSE", 0.02)
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=11, rate_limit=150)) as emu:
        yield emu


def invoke(records: list[dict[str, Any]]) -> list[str]:
    return failed_ids(lambda_handler(sqs_event(records), LocalContext(timeout_seconds=60)))


def simulate_sqs(emu: Emulator, messages: list[Message], poisoned: list[Message]) -> list[Delivery]:
    """SQS as the event source mapping drives it: batches of 10; a listed message comes back later, count+1.

    Poison messages travel in batches of their own, every fifth batch, each time during a full outage.
    """
    queue: deque[tuple[Message, int]] = deque((m, 1) for m in messages)
    held: deque[tuple[Message, int]] = deque((m, 1) for m in poisoned)
    deliveries: list[Delivery] = []
    for batch_no in range(1000):
        if not queue and not held:
            return deliveries
        outage = bool(held) and (batch_no % 5 == 4 or not queue)
        source = held if outage else queue
        batch = [source.popleft() for _ in range(min(BATCH, len(source)))]
        if outage:
            emu.clear_faults()
            emu.add_faults([Fault(kind=OUTAGES[batch[0][1] - 1], probability=1.0, api="modify")])  # type: ignore[arg-type]
        failed = set(invoke([sqs_record(m.body, count, m.id) for m, count in batch]))
        if outage:
            emu.clear_faults()
            emu.add_faults(STORM)
        for msg, count in batch:
            deliveries.append(Delivery(msg.id, count, msg.id in failed))
            if msg.id in failed:
                source.append((msg, count + 1))
        assert failed <= {m.id for m, _ in batch}
    raise AssertionError("the queue never drained")


def check_deliveries(messages: dict[str, Message], deliveries: list[Delivery]) -> dict[str, list[Delivery]]:
    """Every message ends exactly once: its deliveries count 1, 2, ... and only the last is not retried."""
    seen: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        seen[delivery.message].append(delivery)
    assert set(seen) == set(messages)
    for mid, got in seen.items():
        assert [d.receive_count for d in got] == list(range(1, len(got) + 1)), mid
        assert [d.retried for d in got] == [True] * (len(got) - 1) + [False], mid
        assert len(got) <= MAX_RECEIVES, mid
    return seen


def check_letters(messages: dict[str, Message], seen: dict[str, list[Delivery]],
                  letters: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One dead letter per failed message, with its code, class, origin and the exact body."""
    letter_of: dict[str, dict[str, Any]] = {}
    for letter in letters:
        mid = letter["source"]["id"]
        assert mid not in letter_of, f"{mid} dead-lettered twice"
        letter_of[mid] = letter
    for mid, msg in messages.items():
        found = letter_of.get(mid)
        if msg.expect is None:
            # a good message may only be dead-lettered out of deliveries, for a retryable failure
            assert found is None or (found["error"]["class"] == "retryable"
                                     and found["source"]["receive_count"] == MAX_RECEIVES), found
        elif found is not None or msg.expect[2] != "remote":  # a remote failure may be superseded, never sent
            assert found is not None, f"{mid} ({msg.expect}) was not dead-lettered"
            assert (found["error"]["code"], found["error"]["class"], found["error"]["origin"]) == msg.expect
        if found is not None:
            assert found["raw"] == msg.body
            assert found["source"]["receive_count"] == len(seen[mid])
            assert found["error"]["info"]
    return letter_of


def check_requests(emu: Emulator, messages: dict[str, Message], letter_of: dict[str, dict[str, Any]],
                   ) -> dict[str, list[dict[str, Any]]]:
    """Each request belongs to a message that may be sent; nothing is sent after a message succeeded."""
    by_marker = {m.marker: m for m in messages.values()}
    sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for request in modify_requests(emu):
        body = request["body"]
        assert isinstance(body, dict) and body.get("SchedAt") in by_marker, body
        owner = by_marker[body["SchedAt"]]
        assert owner.sendable and body["TaskID"] == owner.task and body["Sdkappid"] == APP
        sent[owner.id].append(request)
    accepted = defaultdict(set)  # task -> markers of the messages the server accepted
    for mid, requests in sent.items():
        if any(r["code"] == 0 for r in requests):
            accepted[messages[mid].task].add(messages[mid].marker)
    for mid, msg in messages.items():
        ok = [i for i, r in enumerate(sent[mid]) if r["code"] == 0]
        if mid in letter_of:
            assert ok == [], f"{mid} succeeded on the server yet was dead-lettered"
        elif not ok:  # superseded: a newer message of its task (sent later, a later marker) was applied
            assert any(m > msg.marker for m in accepted[msg.task]), (mid, [(r["code"], r["fault"]) for r in sent[mid]])
        else:  # succeeded: exactly one accepted request, and it is the last one sent
            assert ok == [len(sent[mid]) - 1], (mid, [(r["code"], r["fault"]) for r in sent[mid]])
    return sent


def check_server(emu: Emulator) -> None:
    requests = modify_requests(emu)
    # Nothing answered 60007 but the injected ones: the pacer kept under the server's limit
    unexpected = [r["t"] for r in requests if r["code"] == 60007 and r["fault"] != "rate_limit"]
    assert unexpected == [], f"{len(unexpected)} requests over the server's rate limit"
    # The server holds, for each task, the SchedAt of the last accepted modification
    last = {r["body"]["TaskID"]: r["body"]["SchedAt"] for r in requests if r["code"] == 0}
    tasks = {t["TaskID"]: t for t in emu.tasks()}
    assert last and all(tasks[task]["SchedAt"] == when for task, when in last.items())


def check_soak(emu: Emulator, messages: list[Message], deliveries: list[Delivery],
               letters: list[dict[str, Any]]) -> dict[str, int]:
    """The soak's claims, shared by the simulated and the moto run; returns counts for the coverage checks."""
    by_id = {m.id: m for m in messages}
    seen = check_deliveries(by_id, deliveries)
    letter_of = check_letters(by_id, seen, letters)
    sent = check_requests(emu, by_id, letter_of)
    check_server(emu)
    requests = modify_requests(emu)
    superseded = [m for m in by_id.values() if m.id not in letter_of and not any(r["code"] == 0 for r in sent[m.id])]
    return {
        "succeeded": len(by_id) - len(letter_of) - len(superseded),
        "superseded": len(superseded),
        "superseded_failures": sum(m.expect is not None for m in superseded),
        "dead_lettered": len(letter_of),
        "redelivered": sum(1 for got in seen.values() if len(got) > 1),
        "resent_in_invocation": len(requests) - sum(len(seen[m]) for m in sent),
        **Counter(f"fault:{r['fault']}" for r in requests if r["fault"]),
    }


def test_fault_soak_through_simulated_sqs(soak_emulator: Emulator, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Given 300 messages (one in four a permanent failure) and six that only ever meet an outage
    dead = tmp_path / "dead.jsonl"
    configure(monkeypatch, handler_env(soak_emulator, dead))
    world = make_world(soak_emulator)
    messages = [message(i, world) for i in range(300)]
    poisoned = [poison(i, world) for i in range(300, 306)]
    soak_emulator.add_faults(STORM)
    # When SQS delivers and redelivers them until the queue is empty
    started = time.monotonic()
    deliveries = simulate_sqs(soak_emulator, messages, poisoned)
    elapsed = time.monotonic() - started
    # Then every claim holds, and the run really went through every path
    counts = check_soak(soak_emulator, messages + poisoned, deliveries, dead_letters(dead))
    print(f"soak: {counts} in {elapsed:.1f}s")
    assert counts["dead_lettered"] + counts["superseded_failures"] == 75 + 6
    assert counts["succeeded"] + counts["superseded"] - counts["superseded_failures"] == 225
    assert counts["redelivered"] >= 10 and counts["resent_in_invocation"] >= 50
    for kind in ("internal_error", "rate_limit", "http_502", "drop", "not_envelope", "slow"):
        assert counts[f"fault:{kind}"] >= 3, kind
    poison_deliveries = [d for d in deliveries if d.message.startswith("00000000-9015")]
    assert sorted(Counter(d.message for d in poison_deliveries).values()) == [MAX_RECEIVES] * 6
    assert all(letter["attempts"] == MAX_ATTEMPTS for letter in dead_letters(dead)
               if letter["error"]["code"] == -1)


def moto_loop(server: MotoSqs, url: str, arn: str, handle: Callable[[list[dict[str, Any]]], list[str]],
              ) -> list[Delivery]:
    """Lambda's event source mapping over a real queue: receive 10, invoke, delete what did not fail."""
    deliveries: list[Delivery] = []
    for _ in range(500):
        answer = server.client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=0, MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"])
        received = answer.get("Messages", [])
        if not received:
            return deliveries
        records = [sqs_record_from_received(m, arn) for m in received]
        failed = set(handle(records))
        done = [m for m in received if m["MessageId"] not in failed]
        if done:
            server.client.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        deliveries += [Delivery(r["messageId"], int(r["attributes"]["ApproximateReceiveCount"]),
                                r["messageId"] in failed) for r in records]
    raise AssertionError("the queue never drained")


def test_fault_soak_through_moto_sqs(soak_emulator: Emulator, sqs_server: MotoSqs, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a real queue (moto, server mode) whose redrive policy moves a message after 5 receives
    sqs_server.reset()
    dead = tmp_path / "dead.jsonl"
    configure(monkeypatch, handler_env(soak_emulator, dead))
    dlq = sqs_server.create_queue("soak-dlq")
    dlq_arn = sqs_server.client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
    url = sqs_server.create_queue("soak-work", VisibilityTimeout="0", RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": MAX_RECEIVES}))
    arn = sqs_server.client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    world = make_world(soak_emulator)
    drafts = [message(i, world) for i in range(60)]
    ids = []
    for draft in drafts:  # one by one: each its own SentTimestamp (ms), so SQS's time orders them as sent
        ids.append(sqs_server.client.send_message(QueueUrl=url, MessageBody=draft.body)["MessageId"])
        time.sleep(0.002)
    messages = [Message(mid, m.body, m.task, m.marker, m.expect) for mid, m in zip(ids, drafts, strict=True)]
    soak_emulator.add_faults(STORM)
    # When the queue is consumed by receive / invoke / delete until it is empty
    deliveries = moto_loop(sqs_server, url, arn, lambda records: invoke(records))
    # Then the same claims hold, the queue is empty and SQS never had to move a message itself
    counts = check_soak(soak_emulator, messages, deliveries, dead_letters(dead))
    print(f"moto soak: {counts}")
    assert counts["dead_lettered"] + counts["superseded_failures"] == 15
    assert counts["succeeded"] + counts["superseded"] - counts["superseded_failures"] == 45
    assert sqs_server.count(url) == 0 and sqs_server.count(dlq) == 0
    assert counts["redelivered"] >= 1 and counts["resent_in_invocation"] >= 1
