"""The fleet's state in Redis (or Valkey): one hash per task and one key per app's send slots, every change one
Lua script run atomically on the server (EVALSHA), never a read then a write from the client.

Hash ``task#SDKAPPID#TASKID``: per ordered field the order key of the change last applied and its id
(``sched_at_key``/``sched_at_by``, ``content_key``/``content_by``), and the lease (``lease_owner``,
``lease_until`` in ms). The key expires like DynamoDB's item (EXPIREAT ``expires_at``: a day after a lease that
recorded nothing, some weeks after a success). The scripts compare the order keys byte by byte, not with Lua's
``<`` (which uses the server's collation locale), so Redis orders exactly as DynamoDB and memory do. Field
``history``: the task's history (``handler.order.history``), one JSON entry per line, the newest CAP, appended by
the script that records the order or releases the lease (or by one of its own): every script touches one key.

Key ``rate#SDKAPPID#API``: the app's next free send slot (ms), the same conditions as DynamoDB's slot item.

Every script touches exactly one key (KEYS[1]) and is given the time (no ``TIME`` inside a script): so a
cluster serves it from the key's slot, and Redis 4.0 runs it (a script that writes after reading the time
needs effects replication, the default only from 5.0).

One client per URL and process, short timeouts and one retry on a dropped connection: a Redis that does not
answer quickly is reported unavailable (-6, or IM_RATE_FALLBACK for the budget) and nothing is sent unguarded.
At its first use the server is asked what it is (``handler.state.redis.server``: one INFO; too old, or able to
evict, is refused; a cluster node gets the cluster client). Every error names the store as
``redis://HOST:PORT/DB``, never the password, and says its cause in words (``handler.state.redis.faults``).
Imported only when ``IM_STATE_STORE`` names a Redis (``redis://`` or ``rediss://`` for TLS): redis-py is not on
the cold path otherwise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.commands.core import Script
from redis.exceptions import RedisClusterException, RedisError

from handler import config
from handler.order.history import CAP
from handler.order.key import Stamp, TaskKey
from handler.order.store import LeaseTaken, StoreMisconfigured, StoreUnavailable, TaskState
from handler.state.redis import server
from handler.state.redis.faults import fault

PREFIX = {"SchedAt": "sched_at", "Content": "content"}  # ordered field -> hash field prefix
LEASE_KEEP = 86_400  # seconds a task's key outlives a lease that recorded nothing (DynamoDB's if_not_exists)

# a > b byte by byte (b false: absent); Lua's own < compares with strcoll, i.e. the server's locale
_NEWER = """
local function newer(a, b)
  if not b then return true end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
"""
# Appends an entry (none when empty) to the task's history, one line each, and keeps the newest CAP lines
_PUSH = f"""
local function push(entry)
  if entry == '' then return end
  local kept = redis.call('HGET', KEYS[1], 'history')
  local text = kept and (kept .. '\\n' .. entry) or entry
  local _, breaks = string.gsub(text, '\\n', '')
  local from = 1
  for _ = 1, breaks + 1 - {CAP} do from = string.find(text, '\\n', from, true) + 1 end
  redis.call('HSET', KEYS[1], 'history', string.sub(text, from))
end
"""
_STATE = "'sched_at_key', 'sched_at_by', 'content_key', 'content_by'"
# ARGV: owner, until_ms, now_ms, keep_until_s -> {taken (0/1), lease_until, the four state fields}
_LEASE = f"""
local f = redis.call('HMGET', KEYS[1], 'lease_owner', 'lease_until', {_STATE})
local state = {{f[3] or '', f[4] or '', f[5] or '', f[6] or ''}}
if f[2] and tonumber(f[2]) >= tonumber(ARGV[3]) and f[1] ~= ARGV[1] then
  return {{1, f[2], unpack(state)}}
end
redis.call('HSET', KEYS[1], 'lease_owner', ARGV[1], 'lease_until', ARGV[2])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIREAT', KEYS[1], ARGV[4]) end
return {{0, ARGV[2], unpack(state)}}
"""
# ARGV: owner, expires_at, then (prefix, key, by) per field: raise each field only where ours is newer; then,
# optionally, the history entry to append (the one argument past the triples).
# An expiry already past is not applied at once (DynamoDB's TTL sweeps some hours later too): the caller gives
# expires_at no sooner than a day from its now (record()), so the script needs no TIME.
_RECORD = _NEWER + _PUSH + """
local function expire_at(at)
  redis.call('EXPIREAT', KEYS[1], at)
end
local mine = redis.call('HGET', KEYS[1], 'lease_owner') == ARGV[1]
local last = #ARGV
if (last - 2) % 3 == 1 then
  push(ARGV[last])
  last = last - 1
end
for i = 3, last, 3 do
  local prefix = ARGV[i]
  if newer(ARGV[i + 1], redis.call('HGET', KEYS[1], prefix .. '_key')) then
    redis.call('HSET', KEYS[1], prefix .. '_key', ARGV[i + 1], prefix .. '_by', ARGV[i + 2])
  end
end
if mine then
  redis.call('HDEL', KEYS[1], 'lease_owner', 'lease_until')
  expire_at(ARGV[2])
elseif redis.call('TTL', KEYS[1]) == -1 then
  expire_at(ARGV[2])
end
"""
# ARGV: owner, entry ('' none), keep_until_s (for a key that is gone: its lease ran out long ago)
_RELEASE = _PUSH + """
if redis.call('HGET', KEYS[1], 'lease_owner') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'lease_owner', 'lease_until')
end
push(ARGV[2])
if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIREAT', KEYS[1], ARGV[3]) end
"""
# ARGV: entry, expires_at (for a task the store keeps nothing of yet)
_NOTE = _PUSH + """
push(ARGV[1])
if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIREAT', KEYS[1], ARGV[2]) end
"""
# ARGV: now_ms, step_ms, reach_ms, keep_s -> {slot, 1} taken (the next free one, or now when idle), or {next free, 0}
_RESERVE = """
local now = tonumber(ARGV[1])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or ARGV[1]))
if slot - now > tonumber(ARGV[3]) then return {string.format('%d', slot), 0} end
redis.call('SET', KEYS[1], string.format('%d', slot + tonumber(ARGV[2])))
redis.call('EXPIREAT', KEYS[1], math.floor((slot + tonumber(ARGV[2])) / 1000) + tonumber(ARGV[4]))
return {string.format('%d', slot), 1}
"""
# ARGV: until_ms, expires_at: move the next free slot there, never back
_HOLD = """
local now = redis.call('GET', KEYS[1])
if (not now) or tonumber(now) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
end
"""


class _Redis:
    """One URL's client and its registered scripts (EVALSHA, loaded again by redis-py after a server restart),
    with what INFO said of the server (None: INFO refused) and, for a server that cannot keep the order, why."""

    def __init__(self, url: str) -> None:
        name = store_name(url)
        self.client: redis.Redis | redis.RedisCluster = redis.Redis.from_url(url, **server.options())
        self.facts = server.read_facts(self.client, name)
        self.accepted = config.eviction_accepted()
        why = self.facts.refusal(self.accepted) if self.facts else None
        self.refused = StoreMisconfigured(name, why) if why else None
        if self.facts and self.facts.cluster and not why:
            self.client.close()
            self.client = server.cluster_client(url)
        self.scripts: dict[str, Script] = {
            name: self.client.register_script(text) for name, text in
            (("lease", _LEASE), ("record", _RECORD), ("release", _RELEASE), ("note", _NOTE), ("reserve", _RESERVE),
              ("hold", _HOLD))}

    def usable(self) -> _Redis:
        if self.refused:
            raise self.refused
        return self


_CLIENTS: dict[str, _Redis] = {}
_CLIENTS_LOCK = threading.Lock()


def _connection(url: str) -> _Redis:
    with _CLIENTS_LOCK:
        if url not in _CLIENTS:
            _CLIENTS[url] = _Redis(url)
        return _CLIENTS[url]


def forget_clients() -> None:
    """Drop every client and its connections (tests that stop and start the server)."""
    with _CLIENTS_LOCK:
        for held in _CLIENTS.values():
            held.client.close()
        _CLIENTS.clear()


def store_name(url: str) -> str:
    """``redis://HOST:PORT/DB``: how logs and errors name the store (the password left out)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}/{parts.path.strip('/') or '0'}"


class _Home:
    """What the task store and the slots share: the URL, the name, one script call that maps every error."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.name = store_name(url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def _run(self, script: str, key: str, *args: object) -> Any:
        try:
            return self._held().scripts[script](keys=[key], args=[str(arg) for arg in args])
        except (RedisError, RedisClusterException) as exc:
            raise self._fault(exc) from None

    def _held(self) -> _Redis:
        """This URL's client, the server asked what it is at first use; StoreMisconfigured where it is refused."""
        try:
            return _connection(self._url).usable()
        except (RedisError, RedisClusterException) as exc:
            raise self._fault(exc) from None
        except config.ConfigError as exc:  # IM_STATE_STORE_EVICTION malformed (a cold start says so first)
            raise StoreMisconfigured(self.name, str(exc)) from None

    def _fault(self, exc: BaseException) -> StoreUnavailable:
        parts = urlsplit(self._url)
        return fault(self.name, exc, tls=parts.scheme == "rediss", password=parts.password is not None)


class RedisStore(_Home):
    """The task store (``TaskStore``): order keys and the lease, as DynamoStore keeps them."""

    keeps_history = True

    def lease(self, task: TaskKey, owner: str, until_ms: int, now_ms: int) -> TaskState:
        taken, until, *state = self._run("lease", task.pk, owner, until_ms, now_ms, until_ms // 1000 + LEASE_KEEP)
        if int(taken):
            raise LeaseTaken(_state(state), int(until))
        return _state(state)

    def record(self, task: TaskKey, owner: str, applied: Mapping[str, Stamp], expires_at: int,
               entry: str | None = None) -> None:
        fields = [part for name, stamp in applied.items() for part in (PREFIX[name], stamp.key, stamp.by)]
        self._run("record", task.pk, owner, max(expires_at, int(time.time()) + LEASE_KEEP), *fields,
                  *([entry] if entry else []))

    def release(self, task: TaskKey, owner: str, entry: str | None = None) -> None:
        self._run("release", task.pk, owner, entry or "", int(time.time()) + LEASE_KEEP)

    def note(self, task: TaskKey, entry: str, expires_at: int) -> None:
        self._run("note", task.pk, entry, expires_at)

    def history(self, task: TaskKey) -> list[str]:
        try:
            text = self._held().client.hget(task.pk, "history")
        except (RedisError, RedisClusterException) as exc:
            raise self._fault(exc) from None
        return str(text).split("\n") if text else []

    def describe(self) -> list[tuple[str, str]]:
        """("kind", ...), then the version, standalone or cluster, the eviction policy (as INFO told them)."""
        held = self._held()
        if held.facts is None:
            return [("kind", f"Redis at {self.name}"), ("version", "unknown: the server refused INFO")]
        return [("kind", f"Redis at {self.name}"), *held.facts.describe(held.accepted)]


def _state(values: Sequence[str]) -> TaskState:
    applied = {}
    for index, name in enumerate(PREFIX):
        key, by = values[2 * index], values[2 * index + 1]
        if key:
            applied[name] = Stamp.from_key(key, by)
    return TaskState(applied)


class RedisSlots(_Home):
    """An app's send slots (``Slots``): one key per app and API holding the next free slot (ms)."""

    def reserve(self, pk: str, now_ms: int, step_ms: int, reach_ms: int, known_ms: int | None) -> tuple[int, bool]:
        """As Slots.reserve: one script that takes the next free slot (no race to lose); the hint is not needed."""
        slot, taken = self._run("reserve", pk, now_ms, step_ms, reach_ms, LEASE_KEEP)
        return int(slot), bool(int(taken))

    def hold(self, pk: str, until_ms: int) -> None:
        self._run("hold", pk, until_ms, until_ms // 1000 + LEASE_KEEP)

