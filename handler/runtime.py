"""The composition root: settings, the modifier and the dead-letter routes, built once per process.

Built on the first invocation rather than at import, so a bad environment fails that invocation
with a message naming the variable, and importing the package stays cheap.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from handler import config
from handler.apps import registry_for
from handler.deadletter import DeadLetters
from handler.order.task import TaskOrder
from handler.service import API, Modifier
from handler.state.homes import open_pacing, open_store


class Runtime(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    settings: config.Settings
    modifier: Modifier
    dead_letters: DeadLetters


@cache
def runtime() -> Runtime:
    settings = config.settings()
    pacing = open_pacing(settings.state_store, settings.rate_limit, settings.rate_fallback, API)
    order = TaskOrder(open_store(settings.state_store))
    modifier = Modifier(settings, registry_for(settings, pacing), order=order)
    return Runtime(settings, modifier, DeadLetters.from_settings(settings))


def reset() -> None:
    """Forget the process's configuration (tests, and `timpush` runs that change the environment)."""
    runtime.cache_clear()
    config.settings.cache_clear()
