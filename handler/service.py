"""The modifier: turns one payload item into an Outcome. Knows nothing of triggers.

Order of work: validate locally (bad input never reaches the API), get the identity (secret),
pace, sign, send; retry what is retryable within the attempt budget and the invocation deadline;
refresh the UserSig and re-fetch the secret once after an auth answer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handler.config import Settings
from handler.im import client, codes
from handler.im.codes import ErrorClass, Origin, classify
from handler.im.ratelimit import NoSlot, RateLimiter
from handler.im.regions import base_url
from handler.im.usersig import Identity, UserSigCache
from handler.model import NOT_JSON, SDKAPPID_MISMATCH, Item, LocalRefusal, Modification, validate
from handler.observability import logger
from handler.outcome import Outcome, Status
from handler.secrets import IdentityProvider, SecretUnavailable

API = "modify_sched_task"
BACKOFF_BASE = 0.25  # seconds; full jitter over base * 2**(attempt-1)
BACKOFF_CAP = 4.0
RATE_LIMIT_PAUSE = 1.0  # after 60007 and kin, let the server's one-second window clear


@dataclass
class _Attempt:
    identity: Identity
    attempts: int = 0
    refreshed: bool = False
    latency: float = 0.0


class Modifier:
    """One per process; shared by every adapter and every warm invocation."""

    def __init__(
        self,
        settings: Settings,
        identities: IdentityProvider,
        limiter: RateLimiter | None = None,
        sigs: UserSigCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._identities = identities
        self._limiter = limiter or RateLimiter(settings.rate_limit)
        self._sigs = sigs or UserSigCache()
        self._base = base_url(settings.region, settings.endpoint)
        self._sleep = sleep
        self._clock = clock

    def apply(self, item: Item, deadline: float) -> Outcome:
        """Validate and send one modification; ``deadline`` is on the ``clock`` (monotonic) scale."""
        request = _as_request(item)
        try:
            modification = validate(item.parsed, sdkappid=self._settings.sdkappid, now=datetime.now(UTC))
        except LocalRefusal as refusal:
            return _refused(item, request, refusal)
        logger.debug("validated", extra={"task_id": modification.TaskID, "task_type": modification.Type,
                                         "sched_at": modification.SchedAt,
                                         "content_keys": sorted(modification.Content or {})})
        try:
            identity = self._identities.get()
        except SecretUnavailable as exc:
            return _secret_failure(item, modification.summary(), exc)
        if modification.Sdkappid not in (None, identity.sdkappid):
            # known only now, from the secret: the same refusal validate() gives when it knows the app
            reason = SDKAPPID_MISMATCH.format(got=modification.Sdkappid, expected=identity.sdkappid)
            return _refused(item, request, LocalRefusal.single("Sdkappid", reason))
        return self._send(item, modification, _Attempt(identity), deadline)

    def _send(self, item: Item, mod: Modification, state: _Attempt, deadline: float) -> Outcome:
        while True:
            result = self._attempt(mod, state, deadline)
            error_class = classify(result.code, result.http_status) if not result.ok else None
            if result.ok or not self._again(result, error_class, state, deadline):
                return _outcome(item, mod, result, error_class, state)

    def _attempt(self, mod: Modification, state: _Attempt, deadline: float) -> client.ImResult:
        asked = time.perf_counter()
        try:
            self._limiter.acquire(deadline)
        except NoSlot as exc:
            return client.ImResult(codes.TIMED_OUT, f"not sent: {exc}", Origin.LOCAL)
        paced_ms = round((time.perf_counter() - asked) * 1000, 1)
        state.attempts += 1
        identity = state.identity
        creds = client.Credentials(identity.sdkappid, identity.admin, self._sigs.get(identity))
        logger.debug("sending", extra={"task_id": mod.TaskID, "attempt": state.attempts, "paced_ms": paced_ms,
                                       "usersig_expires_at": self._sigs.expires_at})
        remaining = deadline - self._clock()
        result = client.call(self._base, API, mod.body(identity.sdkappid), creds, read_timeout=remaining)
        state.latency += result.latency
        logger.debug("answered", extra={"task_id": mod.TaskID, "attempt": state.attempts, "error_code": result.code,
                                        "error_info": result.info, "latency_ms": round(result.latency * 1000, 1)})
        return result

    def _again(self, result: client.ImResult, error_class: ErrorClass | None, state: _Attempt,
               deadline: float) -> bool:
        """Decide whether to send again, doing what must happen before (refresh, back-off)."""
        if error_class is ErrorClass.AUTH and not state.refreshed:
            return self._refresh(state)
        if error_class is not ErrorClass.RETRYABLE or result.origin is Origin.LOCAL:
            return False
        if state.attempts >= self._settings.max_attempts:
            return False
        if result.code in codes.RATE_LIMIT_CODES:
            self._limiter.back_off(RATE_LIMIT_PAUSE)
        delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (state.attempts - 1)))  # noqa: S311
        if self._clock() + delay >= deadline:
            return False
        self._sleep(delay)
        return True

    def _refresh(self, state: _Attempt) -> bool:
        """After an auth answer: a fresh UserSig and a re-fetched secret (rotation), then one more try."""
        state.refreshed = True
        self._sigs.invalidate()
        try:
            state.identity = self._identities.get(force=True)
        except SecretUnavailable:
            return False
        return True


def _as_request(item: Item) -> Any:
    return None if item.parsed is NOT_JSON else item.parsed


def _refused(item: Item, request: Any, refusal: LocalRefusal) -> Outcome:
    return Outcome(
        Status.FAILED, item.raw, request, refusal.code, refusal.reason, classify(refusal.code), Origin.LOCAL,
        errors=tuple(refusal.errors),
    )


def _secret_failure(item: Item, request: dict[str, Any], exc: SecretUnavailable) -> Outcome:
    code = codes.SECRET_UNAVAILABLE
    return Outcome(Status.FAILED, item.raw, request, code, str(exc), classify(code), Origin.LOCAL,
                   secret_missing=bool(getattr(exc, "missing", False)))


def _outcome(item: Item, mod: Modification, result: client.ImResult, error_class: ErrorClass | None,
             state: _Attempt) -> Outcome:
    status = Status.SUCCEEDED if result.ok else Status.FAILED
    return Outcome(
        status, item.raw, mod.summary(), result.code, result.info, error_class,
        None if result.ok else result.origin, state.attempts, round(state.latency * 1000, 1),
        http_status=result.http_status,
    )
