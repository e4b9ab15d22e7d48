"""One behaviour suite for the state store's homes: memory, DynamoDB (moto server, serialized) and Redis (a real
redis-server). The same calls, the same expectations: the lease, order keys that are never lowered, the send
slots, keys that expire, and a store that cannot be reached."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings

from handler import config
from handler.order.key import Stamp, TaskKey
from handler.order.store import LeaseTaken, StoreUnavailable, TaskState
from handler.order.task import TaskOrder
from handler.state import redis_store
from handler.state.homes import open_store
from tests.fakes.redis_server import free_port, redis_server
from tests.support.homes import PASSWORD, Home, Homes, forget_clients
from tests.support.order_history import Change, Delivery, expected, histories, replay

pytestmark = pytest.mark.integration

TASK = TaskKey(1400000001, 99)
NOW = (int(time.time()) // 60 + 1) * 60_000  # ms: leases are judged by the time the caller gives (keys expire)
FAR = NOW + 3_600_000
KEEP = NOW // 1000 + 28 * 86_400  # a success's expires_at
PK = "rate#1400000001#modify_sched_task"




def test_the_lease_is_taken_and_the_state_returned_in_one_call(home: Home) -> None:
    store = home.store()
    assert store.lease(TASK, "a", FAR, NOW) == TaskState({})
    with pytest.raises(LeaseTaken) as taken:
        store.lease(TASK, "b", FAR, NOW)
    assert taken.value.until_ms == FAR and taken.value.state == TaskState({})
    assert store.lease(TASK, "a", FAR + 1, NOW) == TaskState({})  # its owner may take it again
    store.record(TASK, "a", {"SchedAt": Stamp(5_000, "sqs:m1")}, KEEP)
    # free again: b takes it and sees what a applied
    assert store.lease(TASK, "b", FAR, NOW).applied == {"SchedAt": Stamp(5_000, "sqs:m1")}


def test_a_lease_runs_out_by_itself(home: Home) -> None:
    store = home.store()
    store.lease(TASK, "crashed", NOW + 10, NOW)
    with pytest.raises(LeaseTaken):
        store.lease(TASK, "next", FAR, NOW + 10)  # until is inclusive
    assert store.lease(TASK, "next", FAR, NOW + 11) == TaskState({})


def test_only_the_owner_releases(home: Home) -> None:
    store = home.store()
    store.lease(TASK, "a", FAR, NOW)
    store.release(TASK, "b")
    with pytest.raises(LeaseTaken):
        store.lease(TASK, "c", FAR, NOW)
    store.release(TASK, "a")
    store.lease(TASK, "c", FAR, NOW)


def test_a_success_after_its_lease_ran_out_never_lowers_a_stamp(home: Home) -> None:
    store = home.store()
    store.lease(TASK, "slow", NOW + 10, NOW)  # its lease runs out at NOW + 10
    store.lease(TASK, "fast", FAR, NOW + 20)
    store.record(TASK, "fast", {"SchedAt": Stamp(9_000, "new")}, KEEP)
    store.record(TASK, "slow", {"SchedAt": Stamp(8_000, "old"), "Content": Stamp(8_000, "old")}, KEEP)
    store.release(TASK, "slow")  # not its lease any more: nothing happens
    assert store.lease(TASK, "x", FAR, NOW + 30).applied == {"SchedAt": Stamp(9_000, "new"),
                                                              "Content": Stamp(8_000, "old")}


# Equal issue times are told apart by the rest of the order key: the queue's order, the change's id, position.
TIES = [
    (Stamp(7_000, "sqs:a", seq=5), Stamp(7_000, "sqs:a", seq=12)),  # 12 > 5 as numbers, not as text
    (Stamp(7_000, "sqs:a", pos=0), Stamp(7_000, "sqs:a", pos=1)),
    (Stamp(7_000, "sqs:x", seq=9), Stamp(7_001, "sqs:a")),  # the issue time comes first
]
_A, _B = Stamp(7_000, "http:r1"), Stamp(7_000, "http:r2")
TIES.append((_A, _B) if _A.key < _B.key else (_B, _A))  # two ids: the digest decides, the same everywhere


@pytest.mark.parametrize(("older", "newer"), TIES)
def test_the_full_order_key_decides_and_is_never_lowered(home: Home, older: Stamp, newer: Stamp) -> None:
    store = home.store()
    store.record(TASK, "a", {"SchedAt": newer}, KEEP)
    store.record(TASK, "b", {"SchedAt": older}, KEEP)
    assert store.lease(TASK, "c", FAR, NOW).applied == {"SchedAt": newer}
    store.release(TASK, "c")
    # through the order: the older change is superseded, an equal one is a redelivery, a newer one is kept
    order = TaskOrder(store)
    assert order.claim(TASK, ("SchedAt",), older, time.monotonic() + 5).kept == ()
    assert order.claim(TASK, ("SchedAt",), newer, time.monotonic() + 5).kept == ()


def test_a_tie_is_broken_the_same_way_in_either_order(home: Home) -> None:
    first, second = sorted([Stamp(7_000, "http:r1"), Stamp(7_000, "http:r2")], key=lambda s: s.key)
    store = home.store()
    store.record(TASK, "a", {"Content": first}, KEEP)
    store.record(TASK, "a", {"Content": second}, KEEP)
    assert store.lease(TASK, "c", FAR, NOW).applied == {"Content": second}


def test_a_success_recorded_after_its_lease_ran_out_is_kept_whatever_its_expiry(home: Home) -> None:
    # the lease ran out and the task's key is gone with it (Redis drops an empty hash); a past expiry must not
    # take the newly recorded key away at once (DynamoDB's TTL sweeps hours later too)
    store = home.store()
    store.lease(TASK, "slow", FAR, NOW)
    store.release(TASK, "slow")
    store.record(TASK, "slow", {"SchedAt": Stamp(5_000, "sqs:m1", 7)}, 0)
    assert store.lease(TASK, "next", FAR, NOW).applied == {"SchedAt": Stamp(5_000, "sqs:m1", 7)}


_EXAMPLES = iter(range(10 ** 6))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(most=6))
def test_each_field_ends_with_the_change_of_the_largest_key_in_every_home(
        home: Home, history: tuple[list[Change], list[Delivery]]) -> None:
    # random histories with ties, delivered in random orders with duplicates and lost leases (tests/unit runs
    # more examples on memory alone): every home ends where the largest key says
    changes, deliveries = history
    task = TaskKey(1400000001, 10_000 + next(_EXAMPLES))  # one store for every example: a task of its own each
    assert replay(TaskOrder(home.store()), task, changes, deliveries) == expected(changes)


def test_the_send_slots_hand_out_the_next_free_one(home: Home) -> None:
    slots = home.slots()
    assert slots.reserve(PK, NOW, 210, 1_000, None) == (NOW, True)  # an idle budget starts now
    assert slots.reserve(PK, NOW, 210, 1_000, NOW + 210) == (NOW + 210, True)  # a busy one: the next, moved on
    assert slots.reserve(PK, NOW + 10, 420, 1_000, NOW + 420) == (NOW + 420, True)  # a first (double) slot
    assert slots.reserve(PK, NOW, 210, 500, NOW + 840) == (NOW + 840, False)  # out of reach: nothing taken
    slots.hold(PK, NOW + 5_000)
    slots.hold(PK, NOW + 1_000)  # never back
    assert slots.reserve(PK, NOW + 4_500, 210, 1_000, NOW + 5_000) == (NOW + 5_000, True)
    assert slots.reserve(PK, NOW + 9_000, 210, 1_000, None) == (NOW + 9_000, True)  # idle again


def test_a_stale_view_never_gets_a_slot_twice(home: Home) -> None:
    slots = home.slots()
    slots.reserve(PK, NOW, 210, 1_000, None)
    # two senders that saw the budget wrongly (idle; an old slot): each gets a later slot or is told the next
    got = [slots.reserve(PK, NOW, 210, 1_000, None), slots.reserve(PK, NOW, 210, 1_000, NOW + 100)]
    taken = [slot for slot, ok in got if ok]
    assert all(slot >= NOW + 210 for slot, _ in got) and len(set(taken)) == len(taken) >= 1


def test_keys_expire_like_dynamodbs_ttl(shared: Home) -> None:
    store = shared.store()
    now_s = int(time.time())
    store.lease(TASK, "a", (now_s + 60) * 1000, now_s * 1000)
    assert expiry(shared, TASK.pk) == now_s + 60 + 86_400  # a lease that records nothing: a day after it
    store.record(TASK, "a", {"SchedAt": Stamp(5_000, "sqs:m1")}, now_s + 28 * 86_400)
    assert expiry(shared, TASK.pk) == now_s + 28 * 86_400
    shared.slots().reserve(PK, now_s * 1000, 210, 1_000, None)
    assert abs(expiry(shared, PK) - (now_s + 86_400)) <= 2  # a day after the slots it handed out


def expiry(home: Home, key: str) -> int:
    """When the store will drop ``key`` (epoch seconds): DynamoDB's expires_at, Redis's TTL from now."""
    if home.name == "dynamodb":
        return int(home.server.item(key)["expires_at"]["N"])
    ttl = home.server.client().ttl(key)
    assert ttl > 0
    return round(time.time()) + int(ttl)


def test_an_unreachable_store_is_unavailable_and_named(shared: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = free_port()
    if shared.name == "dynamodb":
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{closed}")
        spec, name = shared.spec, shared.spec
    else:
        spec, name = f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:{closed}/0", f"redis://127.0.0.1:{closed}/0"
    forget_clients()
    store = open_store(spec)
    for call in (lambda: store.lease(TASK, "a", FAR, NOW), lambda: store.release(TASK, "a"),
                 lambda: store.record(TASK, "a", {"SchedAt": Stamp(1)}, KEEP)):
        with pytest.raises(StoreUnavailable) as down:
            call()
        assert str(down.value).startswith(f"{name}: ") and PASSWORD not in str(down.value)


# --- Redis's own: byte order in its scripts, the password, a server that goes away and comes back -------------


@pytest.fixture
def redis_home(homes: Homes) -> Iterator[Home]:
    yield homes.get("redis")
    forget_clients()


def test_redis_compares_order_keys_byte_by_byte(redis_home: Home) -> None:
    # Lua's own < uses the server's collation locale, in which "B" may sort after "a" and "." may be ignored;
    # the scripts compare bytes, as Python and DynamoDB do
    client = redis_home.server.client()
    record = client.register_script(redis_store._RECORD)
    for low, high in (("B", "a"), ("9", "a"), ("1.2", "12"), ("ab", "abc"), ("0" * 20, "0" * 19 + "1")):
        assert low < high
        client.delete(TASK.pk)
        record(keys=[TASK.pk], args=["x", KEEP, "sched_at", high, "h"])
        record(keys=[TASK.pk], args=["x", KEEP, "sched_at", low, "l"])
        assert client.hget(TASK.pk, "sched_at_key") == high, (low, high)
        client.delete(TASK.pk)
        record(keys=[TASK.pk], args=["x", KEEP, "sched_at", low, "l"])
        record(keys=[TASK.pk], args=["x", KEEP, "sched_at", high, "h"])
        assert client.hget(TASK.pk, "sched_at_key") == high, (low, high)


def test_a_redis_server_that_goes_away_and_comes_back(redis_home: Home) -> None:
    store, slots = redis_home.store(), redis_home.slots()
    store.lease(TASK, "a", FAR, NOW)
    redis_home.server.stop()
    with pytest.raises(StoreUnavailable, match=r"redis://127\.0\.0\.1:\d+/0: "):
        store.lease(TASK, "b", FAR, NOW)
    with pytest.raises(StoreUnavailable):
        slots.reserve(PK, NOW, 210, 1_000, None)
    redis_home.server.start()  # the same port, empty (no persistence), its scripts gone
    assert store.lease(TASK, "b", FAR, NOW) == TaskState({})
    assert slots.reserve(PK, NOW, 210, 1_000, None) == (NOW, True)


def test_the_redis_password_works_and_shows_nowhere(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                     ) -> None:
    with redis_server(password=PASSWORD) as server:
        bare = server.url.replace(f":{quote(PASSWORD, safe='')}@", "")
        env = {"IM_SECRET_KEY": "k", "IM_SDKAPPID": "1400000001", "IM_STATE_STORE": bare,
               "IM_STATE_STORE_PASSWORD": PASSWORD}
        settings = config.load(env)
        assert PASSWORD not in repr(settings) and PASSWORD not in repr(config.load({**env, **server.env,
                                                                                     "IM_STATE_STORE_PASSWORD": ""}))
        assert settings.state_store is not None
        store = open_store(settings.state_store)
        assert PASSWORD not in repr(store)
        store.lease(TASK, "a", FAR, NOW)  # the password reached the server
        with pytest.raises(StoreUnavailable) as refused:
            open_store(bare).lease(TASK, "b", FAR, NOW)  # no password: refused, and said so without one
        wrong = open_store(server.url.replace(quote(PASSWORD, safe=""), "wrong"))
        with pytest.raises(StoreUnavailable) as wrongly:
            wrong.lease(TASK, "b", FAR, NOW)
        assert all(PASSWORD not in text and "wrong" not in text
                   for text in (str(refused.value), str(wrongly.value), caplog.text))
    forget_clients()
    assert redis_store.store_name(server.url) == f"redis://127.0.0.1:{server.port}/0"
