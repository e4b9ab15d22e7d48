"""The checks, in the order a cold start meets them; a later one runs only when what it needs passed."""

from __future__ import annotations

import os
from collections.abc import Iterator

from handler.config import ConfigError, Settings
from timpush.check.lines import Line, failed, passed

CONFIG_FIX = "set the variable the message names (docs/configuration.md), then run timpush check again"


def every_check() -> Iterator[Line]:
    settings, problem = _configuration()
    if settings is None:
        yield failed("configuration", problem, CONFIG_FIX)
        return
    yield passed("configuration", _summary(settings))
    from timpush.check.apps import app_checks
    from timpush.check.sinks import sink_checks
    from timpush.check.store import store_checks

    yield from app_checks(settings)
    yield from store_checks(settings)
    yield from sink_checks(settings)


def _configuration() -> tuple[Settings | None, str]:
    """The settings as a cold start parses them (handler.config), and the dead-letter routes' forms."""
    from handler import config
    from handler.deadletter import DeadLetters

    try:
        settings = config.load()
        DeadLetters.from_settings(settings)
    except ConfigError as exc:  # its message names the variable and masks what could be a password
        return None, str(exc)
    return settings, ""


def _summary(settings: Settings) -> str:
    """Which variables are set (names only: values may hold a key or a password)."""
    from handler.config import VARIABLES

    named = [var for _field, var, _parse in VARIABLES if os.environ.get(var)]
    return f"valid ({', '.join(named) or 'defaults only'})"
