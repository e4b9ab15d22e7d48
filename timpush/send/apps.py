"""The apps ``timpush send`` checks each row's ``Sdkappid`` against, before anything is sent.

The handler refuses a row without ``Sdkappid`` when it serves several apps (``IM_APPS``, or a secret
holding ``{"apps": [...]}``), and one naming an app it does not serve; checking that here keeps such
rows from being queued only to be dead-lettered. Sending to a queue needs no IM identity, so without
one the app is left to the handler, and the operator is told so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from timpush.runctl import Usage

if TYPE_CHECKING:
    from handler.config import Settings
    from handler.runtime import Runtime


def apps_to_check(runtime: Runtime | None) -> tuple[frozenset[int] | None, str | None]:
    """The SDKAppIDs served (None: not known here), and a note saying why the app is not checked."""
    from handler.config import ConfigError, settings

    try:
        conf = runtime.settings if runtime is not None else settings()
    except ConfigError as exc:
        return None, f"each row's app is not checked here (the IM configuration does not load: {exc})"
    try:
        apps = _served(conf, fetch=runtime is not None)
    except ConfigError as exc:
        raise Usage(str(exc)) from exc
    if apps is None:
        return None, ("each row's app is not checked here (set IM_SDKAPPID or IM_APPS to check it before "
                      "sending); the deployed handler checks it")
    return apps, None


def _served(conf: Settings, fetch: bool) -> frozenset[int] | None:
    from handler.apps import parse_apps_json, registry_for

    if conf.apps_json is not None:
        return frozenset(parse_apps_json(conf.apps_json.get_secret_value(), conf))
    if conf.sdkappid is not None:
        return frozenset({conf.sdkappid})
    if conf.secret_source is None or not fetch:
        return None
    from handler.apps import SecretApps
    from handler.secrets import SecretUnavailable

    registry = registry_for(conf)
    if not isinstance(registry, SecretApps):
        return None
    try:
        return frozenset(registry.configs())
    except SecretUnavailable as exc:
        raise Usage(f"{conf.secret_source}: the secret could not be read to check each row's app: {exc}") from exc
