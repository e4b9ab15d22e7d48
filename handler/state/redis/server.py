"""What a Redis server is, asked once per URL and process (one ``INFO``), and the client to use it through.

DESIGN "The state store, as people rent it": a server older than Redis 4.0, or one with a ``maxmemory`` and a
``maxmemory-policy`` other than ``noeviction``, cannot keep the order (the task's hash has an expiry, so even
``volatile-*`` policies drop it when memory fills with other keys): it is refused as a configuration fault,
unless ``IM_STATE_STORE_EVICTION=accept`` takes the eviction risk knowingly. ``INFO`` that answers without a
policy cannot tell, and is refused the same way. Where ``INFO`` itself is refused (renamed or not granted),
one WARNING says so and the store is used.

A node in cluster mode (``cluster_enabled:1``) is used through redis-py's cluster client, from the same URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import redis
from redis import exceptions as rx
from redis.backoff import NoBackoff
from redis.retry import Retry

from handler.observability import logger

OLDEST = (4, 0)  # the scripts set several hash fields in one HSET (4.0); DESIGN's floor
CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 0.8
_FIX_POLICY = ("set maxmemory-policy to noeviction (ElastiCache: a custom parameter group with maxmemory-policy "
               "noeviction; TencentDB for Redis: the instance's parameter settings in the console), or "
               "IM_STATE_STORE_EVICTION=accept to take the risk")


def options() -> dict[str, Any]:
    """Both clients' settings: short timeouts, one more try on a dropped connection (as DynamoDB's two
    attempts), no CLIENT SETINFO (two round trips fewer on a cold connection), and RESP2: redis-py 8 would
    open with HELLO (RESP3), which a server older than 6.0 does not know, so INFO could not even name it."""
    return {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": READ_TIMEOUT, "decode_responses": True,
            "retry": Retry(NoBackoff(), 1), "driver_info": None, "protocol": 2}


@dataclass(frozen=True)
class Facts:
    """What ``INFO`` told: ``product`` ("Redis 7.0.15", "Valkey 8.0.1"), the Redis version it speaks, cluster
    mode, ``maxmemory`` (bytes, 0: none) and ``maxmemory_policy`` (None where INFO left them out)."""

    product: str
    version: tuple[int, ...]
    cluster: bool
    maxmemory: int | None
    policy: str | None

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> Facts:
        version = str(info.get("redis_version", "0"))
        name = str(info.get("server_name", "redis"))
        shown = str(info.get(f"{name}_version", version)) if name != "redis" else version
        memory = info.get("maxmemory")
        return cls(f"{name.capitalize()} {shown}", _numbers(version), str(info.get("cluster_enabled")) == "1",
                   int(memory) if memory is not None else None,
                   str(info["maxmemory_policy"]) if "maxmemory_policy" in info else None)

    def refusal(self, eviction_accepted: bool) -> str | None:
        """Why this server cannot keep the order, in words; None when it can."""
        if self.version < OLDEST:
            return f"server too old: {self.product} found, Redis 4.0 or newer needed (upgrade the instance)"
        if not eviction_accepted and self.evicts is not False:
            return f"eviction policy: {self.eviction}; {_FIX_POLICY}"
        return None

    @property
    def evicts(self) -> bool | None:
        """Whether the server may drop keys when memory fills (None: INFO did not say)."""
        if self.maxmemory == 0:
            return False
        if self.maxmemory is None or self.policy is None:
            return None
        return self.policy != "noeviction"

    @property
    def eviction(self) -> str:
        if self.evicts is None:
            return "unknown (INFO reports no maxmemory or maxmemory_policy), keys may be evicted"
        if self.maxmemory == 0:
            return f"{self.policy or 'unknown'}, no maxmemory (nothing is evicted)"
        drops = "keys are evicted when memory fills" if self.evicts else "writes are refused when memory fills"
        return f"{self.policy} with maxmemory {self.maxmemory} bytes: {drops}"

    def describe(self, eviction_accepted: bool) -> list[tuple[str, str]]:
        accepted = " (accepted: IM_STATE_STORE_EVICTION=accept)" if eviction_accepted and self.evicts is not False \
            else ""
        return [("version", self.product), ("mode", "cluster" if self.cluster else "standalone"),
                ("eviction policy", self.eviction + accepted)]


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(match) for match in re.findall(r"^\d+|(?<=\.)\d+", version)[:3]) or (0,)


def read_facts(client: redis.Redis, store: str) -> Facts | None:
    """One INFO round trip; None where the server refuses INFO (renamed, or not in the user's ACL): a WARNING
    says so. Any other error (authentication, no such database, unreachable) is raised as it is."""
    try:
        return Facts.from_info(client.info())
    except rx.ResponseError as exc:
        if not (isinstance(exc, rx.NoPermissionError) or "unknown command" in str(exc)):
            raise
    logger.warning("the Redis store refused INFO: its version, cluster mode and eviction policy are not checked; "
                   "the store is used", extra={"store": store})
    return None


def cluster_client(url: str) -> redis.RedisCluster:
    """The cluster client from the node's URL: it reads the slots' owners from the node (one round trip)."""
    return redis.RedisCluster.from_url(url, **options())
