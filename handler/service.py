"""The modifier: turns one payload item into an Outcome. Knows nothing of triggers.

Order of work: validate locally (bad input never reaches the API), get the identity (secret),
take the task (its lease, and which fields are newer than what was applied: DESIGN "Order"), then pace,
sign, send and retry through the one retry loop (``handler.im.retry``: every attempt inside the deadline, a
fresh UserSig and secret once after an auth answer); record a success, release the task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from handler.apps import App, Registry, UnknownApp
from handler.compat import UTC
from handler.config import Settings
from handler.im import client, codes, retry
from handler.im.codes import ErrorClass, Origin, classify
from handler.im.usersig import Identity
from handler.model import (
    NOT_JSON,
    Item,
    LocalRefusal,
    Modification,
    format_issued_at,
    parse_sched_at,
    validate,
)
from handler.observability import logger
from handler.order.key import Issue, Stamp, TaskKey
from handler.order.payload import later_fields
from handler.order.store import StoreUnavailable
from handler.order.task import Claim, TaskBusy, TaskOrder
from handler.outcome import Outcome, Status
from handler.secrets import SecretUnavailable
from handler.state import CALLER_AHEAD, WORKER_AHEAD
from handler.state.homes import open_store

API = "modify_sched_task"
LATER_ENTRY = "a later entry of the same payload"
ALREADY_APPLIED = "already applied"  # the ErrorInfo of a change delivered again after it went through


@dataclass
class _Attempt:
    """One modification on its way: its app and signer, and what the order decided."""

    app: App
    identity: Identity
    issued_at: datetime
    send: Sequence[str] = ()  # the ordered fields newer than what was applied
    dropped: dict[str, str] = field(default_factory=dict)  # field left out -> the newer change that won it
    caller_waiting: bool = False


class Modifier:
    """One per process; shared by every adapter and every warm invocation.

    Each app (``apps``: one, or several with IM_APPS) brings its own identity, UserSig cache, rate limiter
    and base URL, looked up by the modification's Sdkappid.
    """

    def __init__(
        self,
        settings: Settings,
        apps: Registry,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        order: TaskOrder | None = None,
    ) -> None:
        self._settings = settings
        self._apps = apps
        self._retry = retry.Retry(settings.max_attempts, clock, sleep)
        self.order = order or TaskOrder(open_store(None))

    def apply_all(self, items: Sequence[Item], deadline: float, issue: Issue | None = None) -> list[Outcome]:
        """Apply a payload's modifications in turn; a later entry for the same task is newer unless its
        own IssuedAt is older (DESIGN "Order": position breaks only equal issue times)."""
        issue = issue or Issue(datetime.now(UTC))
        issues = [issue.entry(i) for i in range(len(items))]
        laters = later_fields(items, issues, self._apps.only)
        return [self.apply(item, deadline, one, later) for item, one, later in zip(items, issues, laters, strict=True)]

    def apply(self, item: Item, deadline: float, issue: Issue | None = None,
              later: frozenset[str] = frozenset()) -> Outcome:
        """Validate, order and send one modification; ``deadline`` is on the ``clock`` (monotonic) scale.

        ``issue`` is when the trigger says the change was made (its own ``IssuedAt`` wins), by which change
        and at which position; ``later`` names the fields a later entry of the same payload sets for the
        same task with a greater key. A failure carries its order key (``stamp``) for its dead letter.
        """
        issue = issue or Issue(datetime.now(UTC))
        outcome = self._apply(item, issue, later, deadline)
        if outcome.failed and outcome.stamp is None:  # failed before its key was built (refused, no secret)
            return replace(outcome, stamp=issue.stamp(outcome.issued_at, issue.pos))
        return outcome

    def _apply(self, item: Item, issue: Issue, later: frozenset[str], deadline: float) -> Outcome:
        request = _as_request(item)
        try:
            modification = validate(item.parsed, sdkappid=self._apps.only, now=datetime.now(UTC))
        except LocalRefusal as refusal:
            return _refused(item, request, refusal, issue.at)
        issued_at = modification.issued_at or issue.at
        logger.debug("validated", extra={"task_id": modification.TaskID, "task_type": modification.Type,
                                         "sched_at": modification.SchedAt, "issued_at": format_issued_at(issued_at),
                                         "sdkappid": modification.Sdkappid,
                                         "content_keys": sorted(modification.Content or {})})
        try:
            app, identity = self._apps.resolve(modification.Sdkappid)  # may read the secret that holds the apps
        except UnknownApp as exc:
            return _refused(item, request, LocalRefusal.single("Sdkappid", str(exc)), issued_at)
        except SecretUnavailable as exc:
            return _secret_failure(item, modification.summary(), exc, issued_at, modification.Sdkappid)
        state = _Attempt(app, identity, issued_at, caller_waiting=issue.caller_waiting)
        state.dropped = {name: LATER_ENTRY for name in modification.fields if name in later}  # as the order holds
        return self._ordered(item, modification, state, later, issue.stamp(issued_at, issue.pos), deadline)

    def _ordered(self, item: Item, mod: Modification, state: _Attempt, later: frozenset[str], stamp: Stamp,
                 deadline: float) -> Outcome:
        """Send the fields the order says are newest, holding the task's lease; record a success."""
        try:
            claim = self.order.claim(TaskKey(state.app.sdkappid, mod.TaskID), mod.fields, stamp, deadline, later)
        except (TaskBusy, StoreUnavailable) as exc:
            return replace(_unordered(item, mod, state, exc), stamp=stamp)
        state.send = claim.kept
        state.dropped.update({name: won_by(stamp) for name, stamp in claim.won.items()})
        if not claim.kept:  # nothing newer to send: this change went through before, or newer ones won
            return _already_applied(item, mod, state) if not state.dropped else _superseded(item, mod, state)
        try:
            outcome = self._send(item, mod, state, deadline)
        except BaseException:
            self._let_go(claim)
            raise
        if outcome.succeeded:
            self._record(claim, mod)
            return outcome
        self._let_go(claim)  # a failure records nothing
        return replace(outcome, stamp=stamp)  # the key built once, kept by its dead letter

    def _record(self, claim: Claim, mod: Modification) -> None:
        sched_at = parse_sched_at(mod.SchedAt) if mod.SchedAt and "SchedAt" in claim.kept else None
        try:
            self.order.applied(claim, sched_at)
        except StoreUnavailable as exc:
            # Sent and answered OK, so the outcome stands; only a later redelivery may send it again.
            logger.warning("modification applied but its order not recorded", extra={
                "task_id": claim.task.task_id, "store": self.order.store.name, "reason": str(exc)})

    def _let_go(self, claim: Claim) -> None:
        try:
            self.order.release(claim)
        except StoreUnavailable as exc:  # the lease runs out by itself at the deadline
            logger.warning("task lease not released", extra={"task_id": claim.task.task_id, "reason": str(exc)})

    def _send(self, item: Item, mod: Modification, state: _Attempt, deadline: float) -> Outcome:
        """The fields the order kept, through the one retry loop (``handler.im.retry``)."""
        ahead = CALLER_AHEAD if state.caller_waiting else WORKER_AHEAD
        call = retry.Call(state.app, state.identity, state.app.limiter, ahead, {"task_id": mod.TaskID})

        def send(base: str, creds: client.Credentials, left: float) -> client.ImResult:
            return client.call(base, API, mod.body(call.identity.sdkappid, only=state.send), creds, left)

        result = self._retry.run(call, send, deadline)
        return _outcome(item, mod, result, call, state)


def _as_request(item: Item) -> Any:
    return None if item.parsed is NOT_JSON else item.parsed


def _refused(item: Item, request: Any, refusal: LocalRefusal, issued_at: datetime) -> Outcome:
    return Outcome(
        Status.FAILED, item.raw, request, refusal.code, refusal.reason, classify(refusal.code), Origin.LOCAL,
        errors=tuple(refusal.errors), issued_at=issued_at,
    )


def _secret_failure(item: Item, request: dict[str, Any], exc: SecretUnavailable, issued_at: datetime,
                    sdkappid: int | None) -> Outcome:
    code = codes.SECRET_UNAVAILABLE
    return Outcome(Status.FAILED, item.raw, request, code, str(exc), classify(code), Origin.LOCAL,
                   secret_missing=bool(getattr(exc, "missing", False)), issued_at=issued_at, sdkappid=sdkappid)


def _unordered(item: Item, mod: Modification, state: _Attempt, exc: TaskBusy | StoreUnavailable) -> Outcome:
    """Not sent: the task is busy (-8) or the store is out of reach (-6); either way, retried later."""
    code = codes.TASK_BUSY if isinstance(exc, TaskBusy) else codes.STATE_UNAVAILABLE
    return Outcome(Status.FAILED, item.raw, mod.summary(), code, f"not sent: {exc}", classify(code), Origin.LOCAL,
                   issued_at=state.issued_at, sdkappid=state.app.sdkappid)


def won_by(stamp: Stamp) -> str:
    """How a log line names the change that won a field."""
    issued = format_issued_at(datetime.fromtimestamp(stamp.issued_ms / 1000, UTC))
    return f"a change issued {issued} by {stamp.by}" if stamp.by else f"a change issued {issued}"


def _superseded(item: Item, mod: Modification, state: _Attempt) -> Outcome:
    info = "superseded: " + "; ".join(f"{name} won by {by}" for name, by in state.dropped.items())
    return Outcome(Status.SUPERSEDED, item.raw, mod.summary(), codes.SUPERSEDED, info, ErrorClass.SUPERSEDED,
                   Origin.LOCAL, issued_at=state.issued_at, dropped=dict(state.dropped), sdkappid=state.app.sdkappid)


def _already_applied(item: Item, mod: Modification, state: _Attempt) -> Outcome:
    """Every field was last applied by this same change (a redelivery, a replay, a redrive of what went
    through): a success without a request, which names no winner (DESIGN "Order")."""
    return Outcome(Status.SUCCEEDED, item.raw, mod.summary(), 0, ALREADY_APPLIED, issued_at=state.issued_at,
                   sdkappid=state.app.sdkappid, already_applied=True)


def _outcome(item: Item, mod: Modification, result: client.ImResult, call: retry.Call, state: _Attempt) -> Outcome:
    status = Status.SUCCEEDED if result.ok else Status.FAILED
    error_class = None if result.ok else classify(result.code, result.http_status)
    return Outcome(
        status, item.raw, mod.summary(), result.code, result.info, error_class,
        None if result.ok else result.origin, call.attempts, round(call.latency * 1000, 1),
        http_status=result.http_status, issued_at=state.issued_at, dropped=dict(state.dropped),
        sdkappid=state.app.sdkappid,
    )
