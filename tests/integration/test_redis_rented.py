"""The Redis people rent (DESIGN "The state store, as people rent it"), each case a real server on loopback:
a user and password, an ACL user with and without permission, a database that does not exist, TLS to a plain
port, a server that may evict keys, a cluster node, a full server, a replica, INFO refused, a server that
never answers, TencentDB's ``account@password``, and Redis 3.2. Every fault says its cause in words and is
transient or a configuration fault; no password shows anywhere."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from handler import config
from handler.order.key import Stamp, TaskKey
from handler.order.store import StoreMisconfigured, StoreUnavailable, TaskState
from handler.state.homes import open_slots, open_store
from handler.state.redis import faults
from tests.fakes.old_redis import VERSION, old_redis_binary
from tests.fakes.redis_cluster import redis_cluster
from tests.fakes.redis_server import RedisServer, free_port, redis_server
from tests.fakes.silent_server import SilentServer
from tests.support.homes import Homes, forget_clients

pytestmark = pytest.mark.integration

TASK = TaskKey(1400000001, 7)
NOW = (int(time.time()) // 60 + 1) * 60_000
FAR = NOW + 3_600_000
KEEP = NOW // 1000 + 28 * 86_400
PK = "rate#1400000001#modify_sched_task"
PASSWORD = "rented-pw"  # noqa: S105  # a test server's
# the least an ACL user needs (docs/state-store.md): the scripts, loading them, the commands inside them, INFO;
# the store's keys only
LEAST = ("on >{pw} ~task#* ~rate#* -@all +evalsha +eval +script|load +info "
         "+hget +hmget +hset +hdel +ttl +expireat +get +set")


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("IM_STATE_STORE_EVICTION", raising=False)
    forget_clients()  # each test's first use asks its server anew
    yield
    forget_clients()


def fault_of(call: Callable[[], object]) -> StoreUnavailable:
    with pytest.raises(StoreUnavailable) as raised:
        call()
    return raised.value


def lease(url: str) -> Callable[[], TaskState]:
    return lambda: open_store(url).lease(TASK, "a", FAR, NOW)


def url_of(server: RedisServer, userinfo: str = "", db: int = 0, scheme: str = "redis") -> str:
    return f"{scheme}://{userinfo}127.0.0.1:{server.port}/{db}"


def test_a_wrong_or_missing_password_is_named_and_not_retried() -> None:
    with redis_server(password=PASSWORD) as server:
        wrong = fault_of(lease(url_of(server, ":not-it@")))
        missing = fault_of(lease(url_of(server)))
        lease(server.url)()  # the right one works
    assert isinstance(wrong, StoreMisconfigured) and not wrong.transient
    assert wrong.cause == "authentication failed (user or password)"
    assert isinstance(missing, StoreMisconfigured) and "none is given" in missing.cause
    assert str(wrong) == f"redis://127.0.0.1:{server.port}/0: {wrong.cause}" and "not-it" not in str(wrong)


def test_an_acl_user_with_the_least_rights_runs_the_order_and_the_budget() -> None:
    with redis_server(password=PASSWORD) as server:
        server.client().execute_command("ACL SETUSER", "timpush", *LEAST.format(pw="user-pw").split())
        url = url_of(server, "timpush:user-pw@")
        store = open_store(url)
        assert store.lease(TASK, "a", FAR, NOW) == TaskState({})
        store.record(TASK, "a", {"SchedAt": Stamp(5_000, "sqs:m1")}, KEEP)
        assert store.lease(TASK, "b", FAR, NOW).applied == {"SchedAt": Stamp(5_000, "sqs:m1")}
        assert open_slots(url).reserve(PK, NOW, 210, 1_000, None) == (NOW, True)
        assert ("mode", "standalone") in store.describe()
        wrong = fault_of(lease(url_of(server, "timpush:not-it@")))
    assert isinstance(wrong, StoreMisconfigured) and wrong.cause == "authentication failed (user or password)"


def test_an_acl_user_on_a_cluster_also_reads_the_slot_map() -> None:
    # redis-py's cluster client asks a node for the slots' owners (CLUSTER SLOTS) and the keys' positions
    # (COMMAND): without them the user is told so, not that no node could be reached
    with redis_cluster() as cluster:
        for node in cluster.nodes:
            node.client().execute_command("ACL SETUSER", "timpush", *LEAST.format(pw="pw").split())
        url = cluster.url.replace("redis://", "redis://timpush:pw@")
        short = fault_of(lease(url))
        forget_clients()
        for node in cluster.nodes:
            node.client().execute_command("ACL SETUSER", "timpush", "+cluster|slots", "+command")
        store = open_store(url)
        tasks = [TaskKey(1400000001, number) for number in range(12)]
        assert {cluster.node_of(task.pk).port for task in tasks} == {node.port for node in cluster.nodes}
        for task in tasks:
            store.lease(task, "a", FAR, NOW)
    assert isinstance(short, StoreMisconfigured) and short.cause.startswith(
        "no permission: the user may not run CLUSTER")


def test_a_user_without_permission_is_told_which_command_or_keys() -> None:
    with redis_server(password=PASSWORD) as server:
        admin = server.client()
        admin.execute_command("ACL SETUSER", "noscripts", "on", ">pw", "~*", "-@all", "+info")
        admin.execute_command("ACL SETUSER", "otherkeys", "on", ">pw", "~cache:*", "+@all")
        command = fault_of(lease(url_of(server, "noscripts:pw@")))
        keys = fault_of(lease(url_of(server, "otherkeys:pw@")))
    assert isinstance(command, StoreMisconfigured) and command.cause.startswith(
        "no permission: the user may not run EVALSHA")
    assert isinstance(keys, StoreMisconfigured) and "the store's keys" in keys.cause


def test_a_database_that_does_not_exist_is_named() -> None:
    with redis_server() as server:
        missing = fault_of(lease(url_of(server, db=99)))
    assert isinstance(missing, StoreMisconfigured) and missing.cause.startswith("no such database")
    assert str(missing).startswith(f"redis://127.0.0.1:{server.port}/99: ")


def test_tls_to_a_plain_port_is_a_failed_handshake() -> None:
    with redis_server() as server:
        handshake = fault_of(lease(url_of(server, scheme="rediss")))
    assert isinstance(handshake, StoreMisconfigured) and handshake.cause == faults.TLS


def test_a_server_that_never_answers_times_out_and_a_closed_port_refuses() -> None:
    with SilentServer() as silent:
        port = int(silent.url.rsplit(":", 1)[1])
        timed_out = fault_of(lease(f"redis://127.0.0.1:{port}/0"))
    refused = fault_of(lease(f"redis://127.0.0.1:{free_port()}/0"))
    assert (timed_out.cause, timed_out.transient, type(timed_out)) == ("timed out", True, StoreUnavailable)
    assert (refused.cause, refused.transient) == ("connection refused", True)


def test_a_server_that_may_evict_is_refused_unless_the_risk_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    with redis_server(args=["--maxmemory", "2mb", "--maxmemory-policy", "volatile-lru"]) as server:
        refused = fault_of(lease(server.url))
        with pytest.raises(StoreMisconfigured):
            open_store(server.url).describe()
        forget_clients()
        monkeypatch.setenv("IM_STATE_STORE_EVICTION", "accept")
        store = open_store(server.url)
        store.record(TASK, "a", {"SchedAt": Stamp(5_000, "sqs:m1")}, KEEP)
        assert dict(store.describe())["eviction policy"].endswith("(accepted: IM_STATE_STORE_EVICTION=accept)")
        # and the risk is real: other keys with an expiry fill the memory, the task's order goes
        assert _filled_until_gone(server.client(), TASK.pk)
    assert isinstance(refused, StoreMisconfigured)
    assert refused.cause.startswith("eviction policy: volatile-lru with maxmemory 2097152 bytes")
    assert "noeviction" in refused.cause and "parameter group" in refused.cause and "TencentDB" in refused.cause


def _filled_until_gone(client: redis.Redis, key: str) -> bool:
    for batch in range(200):  # 1 KB values, 500 a batch: up to 50 times the 2 MB
        pipe = client.pipeline(transaction=False)
        for index in range(500):
            pipe.set(f"cache:{batch}:{index}", "x" * 1024, ex=3600)
        pipe.execute()
        if not client.exists(key):
            return int(client.info("stats")["evicted_keys"]) > 0
    return False


def test_a_bad_eviction_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IM_STATE_STORE_EVICTION", "yes")
    with redis_server(args=["--maxmemory", "2mb", "--maxmemory-policy", "volatile-lru"]) as server:
        bad = fault_of(lease(server.url))
    assert isinstance(bad, StoreMisconfigured) and bad.cause.startswith("IM_STATE_STORE_EVICTION: must be accept")


def test_noeviction_with_a_maxmemory_is_used_and_a_full_server_is_out_of_memory() -> None:
    with redis_server(args=["--maxmemory", "8mb", "--maxmemory-policy", "noeviction"]) as server:
        store = open_store(server.url)
        store.lease(TASK, "a", FAR, NOW)
        assert "writes are refused when memory fills" in dict(store.describe())["eviction policy"]
        server.client().config_set("maxmemory", "1")  # every byte is over it now: nothing is evicted
        full = fault_of(lambda: store.record(TASK, "a", {"SchedAt": Stamp(5_000, "sqs:m1")}, KEEP))
        server.client().config_set("maxmemory", "8mb")
        store.record(TASK, "a", {"SchedAt": Stamp(5_000, "sqs:m1")}, KEEP)  # the same client, memory given back
    assert isinstance(full, StoreMisconfigured) and full.cause == faults.OOM


def test_a_replica_is_read_only_and_worth_another_try(tmp_path: Path) -> None:
    with redis_server(args=["--dir", str(tmp_path)]) as master, \
            redis_server(args=["--replicaof", "127.0.0.1", str(master.port), "--dir", str(tmp_path)]) as replica:
        read_only = fault_of(lease(replica.url))
    assert type(read_only) is StoreUnavailable and read_only.transient and read_only.cause == faults.READ_ONLY


def test_info_refused_warns_once_and_the_store_is_used(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with redis_server(password=PASSWORD) as server:
        server.client().execute_command("ACL SETUSER", "noinfo", *LEAST.format(pw="pw").split(), "-info")
        store = open_store(url_of(server, "noinfo:pw@"))
        store.lease(TASK, "a", FAR, NOW)
        store.record(TASK, "a", {"SchedAt": Stamp(5_000, "sqs:m1")}, KEEP)
        open_slots(url_of(server, "noinfo:pw@")).reserve(PK, NOW, 210, 1_000, None)
        described = dict(store.describe())
    warned = [r for r in caplog.records if "refused INFO" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert described["version"] == "unknown: the server refused INFO"


def test_a_tencentdb_account_logs_in_with_account_at_password(monkeypatch: pytest.MonkeyPatch) -> None:
    # TencentDB for Redis custom accounts: the password is "account@password"; a server whose requirepass holds
    # an "@" stands for it: the URL carries it as %40, IM_STATE_STORE_PASSWORD as it is
    with redis_server(password="acct@pw") as server:
        lease(url_of(server, ":acct%40pw@"))()
        settings = config.load({"IM_SECRET_KEY": "k", "IM_SDKAPPID": "1400000001",
                                "IM_STATE_STORE": url_of(server), "IM_STATE_STORE_PASSWORD": "acct@pw"})
        assert settings.state_store is not None
        forget_clients()
        assert open_store(settings.state_store).lease(TASK, "b", FAR, NOW + FAR) == TaskState({})
        wrong = fault_of(lease(url_of(server, ":acct%40other@")))
    assert wrong.cause == "authentication failed (user or password)" and "acct" not in str(wrong)


def test_a_cluster_node_is_detected_and_moved_keys_are_followed() -> None:
    with Homes() as homes:
        cluster = homes.get("redis-cluster").server
        store = open_store(cluster.url)
        assert dict(store.describe())["mode"] == "cluster"
        # a task whose slot another node serves: the plain client would be told MOVED; the home follows it
        task = next(TaskKey(1400000001, n) for n in range(100) if cluster.node_of(TaskKey(1400000001, n).pk)
                    is not cluster.nodes[0])
        with pytest.raises(redis.exceptions.MovedError) as moved:
            cluster.nodes[0].client().hget(task.pk, "sched_at_key")
        store.lease(task, "a", FAR, NOW)
        store.record(task, "a", {"SchedAt": Stamp(5_000, "sqs:m1")}, KEEP)
        assert cluster.node_of(task.pk).client().hget(task.pk, "sched_at_key") == Stamp(5_000, "sqs:m1").key
        another_db = fault_of(lease(cluster.url.removesuffix("/0") + "/3"))
    assert faults.fault("redis://n:1/0", moved.value, tls=False, password=False).cause == faults.MOVED
    assert isinstance(another_db, StoreMisconfigured) and another_db.cause == faults.CLUSTER_DB


def test_redis_older_than_4_is_refused_naming_its_version() -> None:
    binary = old_redis_binary()  # built once into ~/.cache/timpush-tests/redis-3.2 (about a minute)
    with redis_server(binary=binary) as server:
        old = fault_of(lease(server.url))
        with pytest.raises(StoreMisconfigured):
            open_store(server.url).describe()
    assert isinstance(old, StoreMisconfigured) and old.cause.startswith(f"server too old: Redis {VERSION} found")


def test_no_password_in_any_fault() -> None:
    secret = "pw-that-must-not-show"
    with redis_server(password=secret) as server:
        texts = [str(fault_of(lease(url_of(server, f"{user}:{quote(secret)}x@", db))))
                 for user, db in (("", 0), ("someone", 0), ("", 99))]
    assert all(secret not in text for text in texts)
