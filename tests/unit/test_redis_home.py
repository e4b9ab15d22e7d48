"""The Redis home's judgement without a server: redis-py's errors (as its own parser makes them from the server's
words) in words, transient or configuration; what an INFO answer says; the scripts' shape (one key, no TIME)."""

from __future__ import annotations

import re
import ssl

import pytest
from redis import exceptions as rx
from redis._parsers.base import BaseParser

from handler import config
from handler.order.store import StoreMisconfigured, StoreUnavailable
from handler.state import redis_store
from handler.state.redis import faults
from handler.state.redis.server import Facts

STORE = "redis://cache.example:6379/0"


def said(server_error: str, *, tls: bool = False, password: bool = True) -> StoreUnavailable:
    """The fault for an error reply, as redis-py's parser turns the server's words into an exception."""
    return faults.fault(STORE, BaseParser.parse_error(server_error), tls=tls, password=password)


@pytest.mark.parametrize(("reply", "cause", "transient"), [
    ("WRONGPASS invalid username-password pair or user is disabled.", faults.AUTH, False),
    ("NOAUTH Authentication required.", faults.AUTH, False),
    ("NOPERM this user has no permissions to run the 'evalsha' command or its subcommand",
     "no permission: the user may not run EVALSHA", False),
    ("NOPERM User timpush has no permissions to run the 'hset' command", "no permission: the user may not run HSET",
     False),
    ("NOPERM this user has no permissions to access one of the keys used as arguments",
     "no permission: the user may not touch the store's keys", False),
    ("ERR DB index is out of range", "no such database", False),
    ("ERR SELECT is not allowed in cluster mode", faults.CLUSTER_DB, False),
    ("OOM command not allowed when used memory > 'maxmemory'.", faults.OOM, False),
    ("READONLY You can't write against a read only replica.", faults.READ_ONLY, True),
    ("LOADING Redis is loading the dataset in memory", "loading", True),
    ("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.", "busy", True),
    ("MOVED 3999 127.0.0.1:6381", faults.MOVED, False),
    ("ASK 3999 127.0.0.1:6381", faults.MOVED, False),
    ("CLUSTERDOWN The cluster is down", "the cluster is down", True),
    ("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", "the replica's link", True),
    ("ERR max number of clients reached", "the server has as many clients", True),
    # an error inside a script comes back wrapped; the server's code inside it still decides
    ("ERR Error running script (call to f_0): @user_script:1: @user_script: 1: -READONLY You can't write against "
     "a read only replica.", faults.READ_ONLY, True),
    ("ERR Error running script (call to f_0): @user_script:2: @user_script: 2: The user executing the script "
     "can't run this command or subcommand", "no permission: the user may not run a command the scripts use", False),
    ("ERR unknown command `EVALSHA`, with args beginning with: ", "the server refused the call: ERR unknown command",
     False),
])
def test_each_server_error_is_a_cause_in_words(reply: str, cause: str, transient: bool) -> None:
    fault = said(reply)
    assert fault.cause.startswith(cause) and fault.transient is transient
    assert isinstance(fault, StoreMisconfigured) is not transient
    assert str(fault) == f"{STORE}: {fault.cause}" and not re.search(r"\b[A-Z][a-z]+Error\b", fault.cause)


def test_a_missing_password_is_told_apart_from_a_wrong_one() -> None:
    assert said("NOAUTH Authentication required.", password=False).cause == faults.UNAUTHENTICATED


def _raised_during(exc: BaseException, during: BaseException) -> BaseException:
    exc.__context__ = during
    return exc


@pytest.mark.parametrize(("exc", "tls", "cause", "transient"), [
    (rx.TimeoutError("Timeout reading from socket"), False, "timed out", True),
    (_raised_during(rx.TimeoutError("Timeout connecting to server"), TimeoutError("_ssl.c:989: The handshake "
                                                                                   "operation timed out")),
     True, faults.TLS, False),
    (_raised_during(rx.ConnectionError("Error 1 connecting"), ssl.SSLError(1, "WRONG_VERSION_NUMBER")), True,
     faults.TLS, False),
    (_raised_during(rx.ConnectionError("Error 111 connecting to h:1. Connection refused."),
                    ConnectionRefusedError(111, "Connection refused")), False, "connection refused", True),
    (rx.ConnectionError("Error -2 connecting to nohost:6379. Name or service not known."), False,
     "host not found", True),
    (rx.ConnectionError("Connection closed by server."), False, "connection dropped", True),
    (rx.RedisClusterException("Redis Cluster cannot be connected."), False, "no node of the cluster", True),
    (rx.SlotNotCoveredError("Command # 1 (EVALSHA) failed"), False, "no node of the cluster", True),
])
def test_each_connection_fault_is_a_cause_in_words(exc: BaseException, tls: bool, cause: str,
                                                    transient: bool) -> None:
    fault = faults.fault(STORE, exc, tls=tls, password=True)
    assert fault.cause.startswith(cause) and fault.transient is transient


def info(**fields: object) -> dict[str, object]:
    return {"redis_version": "7.0.15", "cluster_enabled": 0, "maxmemory": 0, "maxmemory_policy": "noeviction",
            **fields}


@pytest.mark.parametrize(("answer", "accepted", "refusal"), [
    (info(), False, None),
    (info(redis_version="4.0.14", maxmemory=10**9, maxmemory_policy="noeviction"), False, None),
    (info(redis_version="3.2.6"), True, "server too old: Redis 3.2.6 found, Redis 4.0 or newer needed"),
    (info(maxmemory=10**9, maxmemory_policy="volatile-lru"), False,
     "eviction policy: volatile-lru with maxmemory 1000000000 bytes: keys are evicted when memory fills; set "
     "maxmemory-policy to noeviction (ElastiCache: a custom parameter group"),
    (info(maxmemory=10**9, maxmemory_policy="allkeys-lru"), True, None),
    (info(maxmemory=0, maxmemory_policy="allkeys-lru"), False, None),  # no maxmemory: nothing is evicted
    ({"redis_version": "7.2.4"}, False, "eviction policy: unknown (INFO reports no maxmemory"),
    ({"redis_version": "7.2.4"}, True, None),
])
def test_what_info_says_decides_whether_the_order_can_be_kept(answer: dict[str, object], accepted: bool,
                                                              refusal: str | None) -> None:
    found = Facts.from_info(answer).refusal(accepted)
    assert found == refusal if refusal is None else found is not None and found.startswith(refusal)


def test_describe_names_product_mode_and_policy() -> None:
    valkey = Facts.from_info(info(server_name="valkey", valkey_version="8.0.1", redis_version="7.2.4",
                                  cluster_enabled=1, maxmemory=2**30, maxmemory_policy="volatile-lru"))
    assert valkey.describe(eviction_accepted=True) == [
        ("version", "Valkey 8.0.1"), ("mode", "cluster"),
        ("eviction policy", "volatile-lru with maxmemory 1073741824 bytes: keys are evicted when memory fills "
                            "(accepted: IM_STATE_STORE_EVICTION=accept)")]
    assert Facts.from_info(info()).describe(eviction_accepted=False)[:2] == [("version", "Redis 7.0.15"),
                                                                           ("mode", "standalone")]


SCRIPTS = {name: getattr(redis_store, name) for name in ("_LEASE", "_RECORD", "_RELEASE", "_RESERVE", "_HOLD")}


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_touches_one_key_and_is_given_the_time(name: str) -> None:
    text = SCRIPTS[name]
    assert set(re.findall(r"KEYS\[(\w+)\]", text)) == {"1"}  # a cluster serves it from that key's slot
    assert "'TIME'" not in text.upper()  # Redis 4.0: no write after TIME without effects replication


def test_the_eviction_setting_is_accept_or_unset() -> None:
    base = {"IM_SECRET_KEY": "k", "IM_SDKAPPID": "1400000001"}
    assert config.load({**base, "IM_STATE_STORE_EVICTION": "accept"}).state_store_eviction is True
    assert config.load(base).state_store_eviction is False
    with pytest.raises(config.ConfigError, match=r"^IM_STATE_STORE_EVICTION: must be accept .* got 'yes'"):
        config.load({**base, "IM_STATE_STORE_EVICTION": "yes"})
    assert config.eviction_accepted({"IM_STATE_STORE_EVICTION": "accept"}) is True
    assert config.eviction_accepted({}) is False
