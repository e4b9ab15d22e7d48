"""The state store: what it stands on (the home's ``describe()``) and one lease on a throw-away task."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

from handler.config import Settings
from handler.order.key import TaskKey
from handler.order.store import LeaseTaken, StoreUnavailable, TaskStore
from timpush.check.fixes import store_fix
from timpush.check.lines import Line, failed, passed

PROBE_APP = 0  # no real app has SDKAppID 0: the throw-away task cannot be one of the fleet's
LEASE_MS = 5_000


def store_checks(settings: Settings) -> Iterator[Line]:
    from handler.masking import mask
    from handler.state.homes import open_store

    if settings.state_store is None:
        yield passed("state store", "none: each process keeps its own order (timpush send/redrive --to direct need "
                                    "--without-store)")
        return
    store = open_store(settings.state_store)
    what = f"state store {mask(store.name)}"
    try:
        found = store.describe()
    except StoreUnavailable as exc:
        yield failed(what, exc.cause, store_fix(exc))
        return
    for name, value in found:
        yield passed(f"{what} {name}", value)
    yield _lease(store, what)


def _lease(store: TaskStore, what: str) -> Line:
    """One lease taken and released on a throw-away task key (its scripts or conditions run for real)."""
    task = TaskKey(PROBE_APP, secrets.randbelow(10**12) + 1)
    owner = "timpush-check-" + secrets.token_hex(8)
    now_ms = round(time.time() * 1000)
    try:
        store.lease(task, owner, now_ms + LEASE_MS, now_ms)
        store.release(task, owner)
    except LeaseTaken:  # a random key already leased: nothing is wrong with the store
        return passed(f"{what} lease", f"taken by another owner on {task.pk}: the store answers")
    except StoreUnavailable as exc:
        return failed(f"{what} lease", exc.cause, store_fix(exc))
    return passed(f"{what} lease", f"taken and released on the throw-away task {task.pk}")
