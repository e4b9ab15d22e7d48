"""The one place ``IM_STATE_STORE`` chooses a home: the task store and the fleet's send slots, by scheme.

boto3 or redis-py is imported only with the home that needs it (config.py checks the spec before it gets here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from handler.im.ratelimit import Pacer, RateLimiter
from handler.order.store import TaskStore

if TYPE_CHECKING:
    from handler.state.rate import Slots


def open_store(spec: str | None) -> TaskStore:
    """The store ``IM_STATE_STORE`` names; this process's memory when it names none."""
    if not spec:
        from handler.state.memory import MemoryStore

        return MemoryStore()
    return _home(spec)[0]


def open_pacing(spec: str | None, rate: float, fallback: float, api: str) -> Callable[[int], Pacer]:
    """A pacer for each app: the fleet's budget in the store ``IM_STATE_STORE`` names, else this process's.

    A rate of 0 turns pacing off either way.
    """
    if not spec or rate <= 0:
        return lambda _app: RateLimiter(rate)
    from handler.state.rate import FleetLimiter

    slots = open_slots(spec)
    return lambda app: FleetLimiter(slots, f"rate#{app}#{api}", rate, fallback)


def open_slots(spec: str) -> Slots:
    """The fleet's send slots in the store ``spec`` names (a shared home: DynamoDB or Redis)."""
    return _home(spec)[1]


def _dynamodb(spec: str) -> tuple[TaskStore, Slots]:
    from handler.state.dynamodb import DynamoSlots, DynamoStore  # boto3 only when the store is configured

    table = spec.removeprefix("dynamodb:")
    return DynamoStore(table), DynamoSlots(table)


def _redis(url: str) -> tuple[TaskStore, Slots]:
    from handler.state.redis_store import RedisSlots, RedisStore  # redis-py only when the store is configured

    return RedisStore(url), RedisSlots(url)


_HOMES: dict[str, Callable[[str], tuple[TaskStore, Slots]]] = {"dynamodb": _dynamodb, "redis": _redis,
                                                                "rediss": _redis}


def _home(spec: str) -> tuple[TaskStore, Slots]:
    return _HOMES[spec.partition(":")[0]](spec)
