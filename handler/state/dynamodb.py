"""The fleet's state in DynamoDB: one item per task and one per app's send slots, every change one
conditional ``UpdateItem``.

Item ``pk = "task#SDKAPPID#TASKID"``: per ordered field the order key of the change last applied
(``sched_at_key``, ``content_key``: ``Stamp.key``, a fixed-width string every condition compares), beside
it for people the issue time and the change's id (``sched_at_issued``/``sched_at_by``, ``content_...``),
the lease (``lease_owner``, ``lease_until`` in ms) and ``expires_at`` (seconds, the table's TTL attribute).
An item the previous version wrote has ``_issued`` and ``_by`` only: its change wins every tie at its
millisecond, as equal issue times did then, so an older change never lowers it (``LEGACY_SEQ``). Taking the lease
returns the item in the same call, and losing the race returns the old item with the failure
(``ReturnValuesOnConditionCheckFailure``), so no call reads before it writes.

The task's history (``handler.order.history``) is the item's map ``history``: one attribute per entry, named
``h`` + the entry's time in ms + a random tail, so that entries sort by time and two writers never collide. A list
cannot be capped in one ``UpdateItem`` (``list_append`` and ``REMOVE history[0]`` overlap), a map can: the lease
(which returns the whole item) creates the map and shows which entries exist, and the record or release that
follows under that lease adds its entry and removes the oldest beyond CAP, in the same write. An entry written
without the lease (a dead letter, a change superseded without it) is added only while the map holds fewer than
HARD_CAP (``size(history)``), which leaves room for ten such entries between two leases; past it, the refusal
returns the item and a second write removes the oldest. So a task's item holds at most HARD_CAP + 1 entries of at
most MAX_ENTRY_BYTES: about 170 KB, well inside DynamoDB's 400 KB item; ``history`` reads the newest CAP.

One client per process, built on first use, with short timeouts and few retries: a store that does
not answer quickly is reported unavailable (-6) and the modification is retried later, never sent
unguarded. ``AWS_ENDPOINT_URL_DYNAMODB`` (boto3's own variable) points it elsewhere, e.g. at moto.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from handler.order.history import CAP
from handler.order.key import Stamp, TaskKey
from handler.order.store import LeaseTaken, StoreUnavailable, TaskState
from handler.state.dynamodb_faults import fault

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 0.8
BOTO_CONFIG = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                     retries={"mode": "standard", "max_attempts": 2})
ATTRIBUTE = {"SchedAt": "sched_at", "Content": "content"}  # ordered field -> attribute prefix
CONDITION_FAILED = "ConditionalCheckFailedException"
LEGACY_SEQ = 10 ** 40 - 1  # the queue order given to a change recorded without a key: above any real one
LEGACY_POS = 10 ** 6 - 1
NO_ID = "-"  # the ``_by`` of a change without an id, as the previous version wrote it; read back as ""
HARD_CAP = CAP + 10  # entries an entry written without the lease may find before it trims first
SEEN_MAX = 1_000  # leases whose history this process remembers until their record or release

_CLIENT: list[DynamoDBClient] = []
_CLIENT_LOCK = threading.Lock()


def client() -> DynamoDBClient:
    """The process's one DynamoDB client."""
    with _CLIENT_LOCK:
        if not _CLIENT:
            _CLIENT.append(boto3.session.Session().client("dynamodb", config=BOTO_CONFIG))
        return _CLIENT[0]


def forget_client() -> None:
    """Drop the client (tests that move the endpoint)."""
    with _CLIENT_LOCK:
        _CLIENT.clear()


class DynamoStore:
    keeps_history = True

    def __init__(self, table: str) -> None:
        self.table = table
        self.name = f"dynamodb:{table}"
        self._seen: dict[str, list[str]] = {}  # lease owner -> the history's entry names its lease returned
        self._seen_lock = threading.Lock()

    def lease(self, task: TaskKey, owner: str, until_ms: int, now_ms: int) -> TaskState:
        try:
            answer = self._update(
                task, "SET lease_owner = :o, lease_until = :u, expires_at = if_not_exists(expires_at, :e), "
                      "history = if_not_exists(history, :h)",
                {":o": {"S": owner}, ":u": _n(until_ms), ":now": _n(now_ms), ":e": _n(until_ms // 1000 + 86_400),
                 ":h": {"M": {}}},
                "attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :o",
                ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _Lost as lost:
            raise LeaseTaken(_state(lost.item), int(lost.item.get("lease_until", {}).get("N", "0"))) from None
        item = answer.get("Attributes", {})
        with self._seen_lock:
            self._seen[owner] = sorted(item.get("history", {}).get("M", {}))
            while len(self._seen) > SEEN_MAX:  # a lease never given back (a crash mid-way): forget the oldest
                del self._seen[next(iter(self._seen))]
        return _state(item)

    def record(self, task: TaskKey, owner: str, applied: Mapping[str, Stamp], expires_at: int,
               entry: str | None = None) -> None:
        sets, values = _stamp_sets(applied)
        values.update({":o": {"S": owner}, ":e": _n(expires_at)})
        adds, removes, names = self._entry(owner, entry, values)
        try:
            self._update(task, f"SET {', '.join([*sets, *adds])}, expires_at = :e "
                               f"REMOVE {', '.join(['lease_owner', 'lease_until', *removes])}",
                         values, "lease_owner = :o", **names)
        except _Lost:
            # The lease ran out under us (a call slower than the deadline): raise each field on its own,
            # and only where ours is newer, so a slower success never lowers a stamp.
            for name, stamp in applied.items():
                self._raise_one(task, name, stamp)
            if entry is not None:
                self.note(task, entry, expires_at)
        self._forget(owner)

    def release(self, task: TaskKey, owner: str, entry: str | None = None) -> None:
        values: dict[str, Any] = {":o": {"S": owner}}
        adds, removes, names = self._entry(owner, entry, values)
        try:
            self._update(task, (f"SET {', '.join(adds)} " if adds else "")
                         + f"REMOVE {', '.join(['lease_owner', 'lease_until', *removes])}",
                         values, "lease_owner = :o", **names)
        except _Lost:  # not ours any more: nothing to give back, but the entry still goes in
            if entry is not None:
                self.note(task, entry, int(time.time()) + 86_400)
        self._forget(owner)

    def _forget(self, owner: str) -> None:
        """The lease is given back: what it saw of the history is of no more use."""
        with self._seen_lock:
            self._seen.pop(owner, None)

    def note(self, task: TaskKey, entry: str, expires_at: int) -> None:
        """One write while the map has room; a second one, that trims, when it is full or missing."""
        name = _entry_name()
        values: dict[str, Any] = {":h": {"S": entry}, ":x": _n(expires_at)}
        try:
            self._update(task, "SET history.#new = :h, expires_at = if_not_exists(expires_at, :x)",
                         {**values, ":cap": _n(HARD_CAP)}, "attribute_exists(history) AND size(history) < :cap",
                         ExpressionAttributeNames={"#new": name}, ReturnValuesOnConditionCheckFailure="ALL_OLD")
            return
        except _Lost as lost:
            kept = lost.item.get("history", {}).get("M")
        if kept is None:  # no history yet (a task no lease of this version has seen): the map with this entry
            self._update_or_lost(task, "SET history = :m, expires_at = if_not_exists(expires_at, :x)",
                                 {":m": {"M": {name: values[":h"]}}, ":x": values[":x"]},
                                 "attribute_not_exists(history)")
            return
        old = {f"#o{i}": key for i, key in enumerate(sorted(kept)[:max(0, len(kept) + 1 - CAP)])}
        self._update_or_lost(task, "SET history.#new = :h REMOVE " + ", ".join(f"history.{n}" for n in old),
                             {":h": values[":h"]}, "attribute_exists(history)",
                             ExpressionAttributeNames={"#new": name, **old})

    def history(self, task: TaskKey) -> list[str]:
        try:
            answer = client().get_item(TableName=self.table, Key={"pk": {"S": task.pk}}, ConsistentRead=True,
                                       ProjectionExpression="history")
        except (ClientError, BotoCoreError) as exc:
            raise fault(self.name, exc) from exc
        kept = answer.get("Item", {}).get("history", {}).get("M", {})
        return [str(kept[key].get("S", "")) for key in sorted(kept)]

    def _entry(self, owner: str, entry: str | None, values: dict[str, Any],
               ) -> tuple[list[str], list[str], dict[str, Any]]:
        """The SET and REMOVE parts that add ``entry`` and drop the oldest beyond CAP, as the lease saw them."""
        with self._seen_lock:  # kept until the write is made: a retried write (faults.steady) trims as well
            seen = self._seen.get(owner, [])
        if entry is None:
            return [], [], {}
        values[":h"] = {"S": entry}
        old = seen[:max(0, len(seen) + 1 - CAP)]
        names = {"#new": _entry_name(), **{f"#o{i}": key for i, key in enumerate(old)}}
        return ["history.#new = :h"], [f"history.#o{i}" for i in range(len(old))], \
            {"ExpressionAttributeNames": names}

    def _update_or_lost(self, task: TaskKey, expression: str, values: dict[str, Any], condition: str,
                        **extra: Any) -> None:
        try:
            self._update(task, expression, values, condition, **extra)
        except _Lost:  # another writer got there first (a map made, trimmed): rare, and only a history entry
            raise StoreUnavailable(self.name, "history changed while it was written") from None

    def describe(self) -> list[tuple[str, str]]:
        return [("kind", f"DynamoDB table {self.table}")]

    def _raise_one(self, task: TaskKey, name: str, stamp: Stamp) -> None:
        sets, values = _stamp_sets({name: stamp})
        prefix = ATTRIBUTE[name]
        # Newer by the whole key; an item without one (the previous version) only by a later millisecond.
        # ``:f`` is the key's millisecond alone: a key above it is of the same millisecond as ours.
        values[":f"] = {"S": f"{stamp.issued_ms:015d}."}
        try:
            self._update(task, f"SET {', '.join(sets)}", values,
                         f"attribute_not_exists({prefix}_issued) OR {prefix}_issued < :s_{prefix} OR "
                         f"({prefix}_issued = :s_{prefix} AND {prefix}_key > :f AND {prefix}_key < :k_{prefix})")
        except _Lost:
            pass  # a newer change is recorded already

    def _update(self, task: TaskKey, expression: str, values: dict[str, Any], condition: str,
                **extra: Any) -> dict[str, Any]:
        return _update(self.name, self.table, task.pk, expression, values, condition, **extra)


def _update(name: str, table: str, pk: str, expression: str, values: dict[str, Any], condition: str,
            **extra: Any) -> dict[str, Any]:
    """One conditional UpdateItem; a failed condition is ``_Lost`` with the old item, anything else a store fault
    in words (``dynamodb_faults``: configuration faults apart from transient ones)."""
    try:
        return dict(client().update_item(
            TableName=table, Key={"pk": {"S": pk}}, UpdateExpression=expression,
            ConditionExpression=condition, ExpressionAttributeValues=values, **extra,
        ))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == CONDITION_FAILED:
            item = exc.response.get("Item")  # present with ReturnValuesOnConditionCheckFailure
            raise _Lost(item if isinstance(item, dict) else {}) from None
        raise fault(name, exc) from exc
    except BotoCoreError as exc:
        raise fault(name, exc) from exc


class _Lost(Exception):
    """A condition did not hold; ``item`` is the item as it was (empty when it did not exist)."""

    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__("condition failed")
        self.item = item


def _entry_name() -> str:
    """A new entry's map key: ``h`` + the time (ms, fixed width, so keys sort by time) + a random tail."""
    return f"h{round(time.time() * 1000):015d}{secrets.token_hex(3)}"


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _stamp_sets(applied: Mapping[str, Stamp]) -> tuple[list[str], dict[str, Any]]:
    sets: list[str] = []
    values: dict[str, Any] = {}
    for name, stamp in applied.items():
        prefix = ATTRIBUTE[name]
        sets += [f"{prefix}_key = :k_{prefix}", f"{prefix}_issued = :s_{prefix}", f"{prefix}_by = :b_{prefix}"]
        values[f":k_{prefix}"] = {"S": stamp.key}
        values[f":s_{prefix}"] = _n(stamp.issued_ms)
        values[f":b_{prefix}"] = {"S": stamp.by or NO_ID}
    return sets, values


def _state(item: Mapping[str, Any]) -> TaskState:
    applied = {name: stamp for name, prefix in ATTRIBUTE.items() if (stamp := _stamp(item, prefix)) is not None}
    return TaskState(applied)


def _stamp(item: Mapping[str, Any], prefix: str) -> Stamp | None:
    """The field's stamp: from its key, or (no key, or a later ``_issued`` written by the previous version
    during a deployment) the issue time alone, winning every tie at its millisecond."""
    issued = item.get(f"{prefix}_issued", {}).get("N")
    if issued is None:
        return None
    by = str(item.get(f"{prefix}_by", {}).get("S", ""))
    by = "" if by == NO_ID else by
    key = item.get(f"{prefix}_key", {}).get("S")
    if isinstance(key, str) and key.startswith(f"{int(issued):015d}."):
        return Stamp.from_key(key, by)
    return Stamp(int(issued), by, LEGACY_SEQ, LEGACY_POS)


class DynamoSlots:
    """An app's send slots in DynamoDB: one item per app and API holding the next free slot (ms)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.name = f"dynamodb:{table}"

    def reserve(self, pk: str, now_ms: int, step_ms: int, reach_ms: int, known_ms: int | None) -> tuple[int, bool]:
        """As Slots.reserve, in one conditional UpdateItem whose form the hint chooses.

        A budget seen idle (``known_ms`` None) is started at ``now_ms``; one seen busy is moved on by the server
        (``next_free + step``), so racing senders each get the next slot instead of losing to one another. A
        wrong guess loses and returns the item as it is, which the next try uses.
        """
        values = {":now": _n(now_ms), ":e": _n((now_ms + reach_ms + step_ms) // 1000 + 86_400)}
        if known_ms is None:
            expression, condition = "SET next_free = :start, expires_at = :e", \
                "attribute_not_exists(next_free) OR next_free <= :now"
            values[":start"] = _n(now_ms + step_ms)
        else:
            expression, condition = "SET next_free = next_free + :step, expires_at = :e", \
                "next_free > :now AND next_free <= :reach"
            values.update({":step": _n(step_ms), ":reach": _n(now_ms + reach_ms)})
        try:
            answer = _update(self.name, self.table, pk, expression, values, condition, ReturnValues="UPDATED_OLD",
                             ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except _Lost as lost:
            return int(lost.item.get("next_free", {}).get("N", "0")), False
        old = answer.get("Attributes", {}).get("next_free", {}).get("N")
        return (now_ms if known_ms is None or old is None else int(old)), True

    def hold(self, pk: str, until_ms: int) -> None:
        """Nobody sends before ``until_ms`` (the server said 60007): move the next free slot there, never back."""
        try:
            _update(self.name, self.table, pk, "SET next_free = :u, expires_at = :e",
                    {":u": _n(until_ms), ":e": _n(until_ms // 1000 + 86_400)},
                    "attribute_not_exists(next_free) OR next_free < :u")
        except _Lost:
            pass  # already held at least as long
