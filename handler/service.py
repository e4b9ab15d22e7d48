"""The modifier: turns one payload item into an Outcome. Knows nothing of triggers.

Order of work: validate locally (bad input never reaches the API), get the identity (secret),
take the task (its lease, and which fields are newer than what was applied: DESIGN "Order"), then pace,
sign, send and retry through the one retry loop (``handler.im.retry``: every attempt inside the deadline, a
fresh UserSig and secret once after an auth answer); record a success, release the task.
A modification that reaches its task leaves an entry in the task's history (DESIGN "Task history"): the order
writes a success's and a superseded change's; an adapter that dead-letters a failure calls ``dead_lettered``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from handler.apps import App, Registry, UnknownApp
from handler.compat import UTC
from handler.config import Settings
from handler.im import client, codes, retry
from handler.im.codes import ErrorClass, Origin, classify
from handler.im.usersig import Identity
from handler.model import (
    Item,
    LocalRefusal,
    Modification,
    NotJson,
    format_issued_at,
    parse_sched_at,
    validate,
)
from handler.observability import debugging, logger
from handler.order import history
from handler.order.history import Draft
from handler.order.key import Issue, Stamp, TaskKey
from handler.order.payload import later_changes
from handler.order.store import StoreUnavailable
from handler.order.task import Claim, TaskBusy, TaskOrder
from handler.outcome import Outcome, Status
from handler.secrets import SecretUnavailable
from handler.state import CALLER_AHEAD, WORKER_AHEAD
from handler.state.homes import open_store

API = "modify_sched_task"
LATER_ENTRY = "a later entry of the same payload"
ALREADY_APPLIED = "already applied"  # the ErrorInfo of a change delivered again after it went through


class _Attempt:  # a plain class, not a dataclass: cheaper to build at a cold start (handler.config)
    """One modification on its way: its app and signer, and what the order decided."""

    __slots__ = ("app", "identity", "issued_at", "send", "dropped", "caller_waiting")

    def __init__(self, app: App, identity: Identity, issued_at: datetime, caller_waiting: bool = False) -> None:
        self.app, self.identity, self.issued_at, self.caller_waiting = app, identity, issued_at, caller_waiting
        self.send: Sequence[str] = ()  # the ordered fields newer than what was applied
        self.dropped: dict[str, str] = {}  # field left out -> the newer change that won it


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
        laters = later_changes(items, issues, self._apps.only)
        return [self.apply(item, deadline, one, later) for item, one, later in zip(items, issues, laters, strict=True)]

    def dead_lettered(self, outcomes: Sequence[Outcome]) -> None:
        """Each failure that reached its task and is now dead-lettered leaves its entry in the task's history
        (the adapter calls this once the dead letters are written); a history not written is only a WARNING."""
        for outcome in outcomes:
            if outcome.failed and outcome.history is not None:
                self.order.noted(outcome.history.task, outcome.history, history.DEAD_LETTERED, outcome.code)

    def apply(self, item: Item, deadline: float, issue: Issue | None = None,
              later: Mapping[str, Stamp] | None = None) -> Outcome:
        """Validate, order and send one modification; ``deadline`` is on the ``clock`` (monotonic) scale.

        ``issue`` is when the trigger says the change was made (its own ``IssuedAt`` wins), by which change
        and at which position; ``later`` names the fields a later entry of the same payload sets for the
        same task with a greater key. A failure carries its order key (``stamp``) for its dead letter.
        """
        issue = issue or Issue(datetime.now(UTC))
        outcome = self._apply(item, issue, later or {}, deadline)
        if outcome.failed and outcome.stamp is None:  # failed before its key was built (refused, no secret)
            return outcome._replace(stamp=issue.stamp(outcome.issued_at, issue.pos))
        return outcome

    def _apply(self, item: Item, issue: Issue, later: Mapping[str, Stamp], deadline: float) -> Outcome:
        request = _as_request(item)
        try:
            modification = validate(item.parsed, sdkappid=self._apps.only, now=datetime.now(UTC))
        except LocalRefusal as refusal:
            return _refused(item, request, refusal, issue.at)
        issued_at = modification.issued_at or issue.at
        if debugging():  # the fields of a debug line are built only when it is written
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
        stamp = issue.stamp(issued_at, issue.pos)
        keep = self.order.keeps_history  # the entry's fields only where a history is kept (a digest: some us)
        draft = Draft(TaskKey(app.sdkappid, modification.TaskID), stamp, issue.kind,
                      history.fields_of(modification.SchedAt, modification.Content) if keep else {},
                      _request_id() if keep else None)
        return self._ordered(item, modification, state, later, draft, deadline)

    def _ordered(self, item: Item, mod: Modification, state: _Attempt, later: Mapping[str, Stamp], draft: Draft,
                 deadline: float) -> Outcome:
        """Send the fields the order says are newest, holding the task's lease; record a success."""
        try:
            claim = self.order.claim(draft.task, mod.fields, draft.stamp, deadline, later, draft)
        except (TaskBusy, StoreUnavailable) as exc:
            return _unordered(item, mod, state, exc)._replace(stamp=draft.stamp, history=draft)
        state.send = claim.kept
        state.dropped.update({name: won_by(stamp) for name, stamp in claim.won.items()})
        if not claim.kept:  # nothing newer to send: this change went through before, or newer ones won
            return _already_applied(item, mod, state) if claim.already_applied else _superseded(item, mod, state)
        try:
            outcome = self._send(item, mod, state, deadline)
        except BaseException:
            self._let_go(claim, deadline)
            raise
        if outcome.succeeded:
            self._record(claim, mod, draft, deadline)
            return outcome
        self._let_go(claim, deadline)  # a failure records nothing
        # the key built once, kept by its dead letter; the entry its dead letter will write
        return outcome._replace(stamp=draft.stamp, history=draft._replace(left_out=claim.left_out))

    def _record(self, claim: Claim, mod: Modification, draft: Draft, deadline: float) -> None:
        sched_at = parse_sched_at(mod.SchedAt) if mod.SchedAt and "SchedAt" in claim.kept else None
        try:
            self.order.applied(claim, sched_at, draft, deadline)
        except StoreUnavailable as exc:
            # Sent and answered OK, so the outcome stands; only a later redelivery may send it again.
            logger.warning("modification applied but its order not recorded", extra={
                "task_id": claim.task.task_id, "store": self.order.store.name, "reason": str(exc)})

    def _let_go(self, claim: Claim, deadline: float) -> None:
        try:
            self.order.release(claim, deadline)
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


def _request_id() -> str | None:
    """The invocation's request id, as the entry points put it in the log lines (none in a local tool)."""
    value = logger.get_current_keys().get("function_request_id")
    return value if isinstance(value, str) else None


def _as_request(item: Item) -> Any:
    return None if isinstance(item.parsed, NotJson) else item.parsed


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
    why = f"state store {exc.store}: {exc.cause}" if isinstance(exc, StoreUnavailable) else str(exc)
    return Outcome(Status.FAILED, item.raw, mod.summary(), code, f"not sent: {why}", classify(code), Origin.LOCAL,
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
