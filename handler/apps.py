"""The IM apps this process serves, each with its own state (DESIGN ``IM_APPS``).

One app (``IM_SDKAPPID`` with ``IM_SECRET_KEY``, or a secret holding one app) or several (``IM_APPS``, or
a secret holding ``{"apps": [...]}``). Each ``App`` has its own identity, base URL, UserSig cache and rate
limiter, so one app's rate limit or refused key never slows or fails another. The service looks an app up
by the modification's ``Sdkappid``; an unknown or missing one is ``UnknownApp`` (refused locally, 90104).

Parsing is plain functions: every problem is one ConfigError naming ``IM_APPS`` (or the secret) and the entry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol

from handler.config import ConfigError, Settings
from handler.im.ratelimit import Pacer, RateLimiter
from handler.im.regions import REGION_DOMAINS, base_url
from handler.im.usersig import Identity, UserSigCache
from handler.model import SDKAPPID_MISMATCH
from handler.observability import logger
from handler.secret_sources import Fetch, FetchFailed
from handler.secrets import (
    DEFAULT_ADMIN,
    EnvIdentity,
    IdentityProvider,
    SecretSource,
    SecretUnavailable,
    parse_app,
    parse_value,
    resolve,
    stored_secret,
)

APPS_VAR = "IM_APPS"
ENTRY_FIELDS = ("SDKAppID", "Key", "Admin", "Region", "Endpoint")
ENTRY_SHAPE = '{"SDKAppID": 1400000000, "Key": "...", "Admin": "administrator", "Region": "china", "Endpoint": ...}'

LimiterFor = Callable[[int], Pacer]
"""The pacer of one app, by SDKAppID (this process's limiter, or the fleet's): each app has its own budget."""


class UnknownApp(Exception):
    """The modification's Sdkappid names no app this process serves, or is missing where several are."""


class AppConfig(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    """One app as configured: who signs (the key stays out of repr) and where its requests go."""

    identity: Identity
    base: str

    @property
    def sdkappid(self) -> int:
        return self.identity.sdkappid


# --- parsing --------------------------------------------------------------------------------------


def parse_apps_json(text: str, settings: Settings) -> dict[int, AppConfig]:
    """``IM_APPS``: a JSON list of apps, each with its key (local use)."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise ConfigError(f"{APPS_VAR}: not valid JSON; expected a list of {ENTRY_SHAPE}") from None
    return parse_apps(doc, APPS_VAR, settings)


def parse_apps(doc: object, where: str, settings: Settings) -> dict[int, AppConfig]:
    """A list of app entries; ``IM_ADMIN``, ``IM_REGION`` and ``IM_ENDPOINT`` fill what an entry leaves out."""
    if not isinstance(doc, list) or not doc:
        got = "an empty list" if doc == [] else f"a JSON {type(doc).__name__}"
        raise ConfigError(f"{where}: expected a non-empty JSON list of {ENTRY_SHAPE}, got {got}")
    apps: dict[int, AppConfig] = {}
    first: dict[int, int] = {}
    for index, entry in enumerate(doc):
        app = _entry(entry, f"{where}[{index}]", settings)
        if app.sdkappid in first:
            raise ConfigError(f"{where}[{index}]: duplicate SDKAppID {app.sdkappid} "
                              f"(already in {where}[{first[app.sdkappid]}])")
        first[app.sdkappid] = index
        apps[app.sdkappid] = app
    return apps


def _entry(entry: object, where: str, settings: Settings) -> AppConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a JSON object {ENTRY_SHAPE}")
    unknown = sorted(str(name) for name in entry if name not in ENTRY_FIELDS)
    if unknown:  # a typo such as "Regoin" must not quietly send to the default region
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}; the fields are {', '.join(ENTRY_FIELDS)}")
    value = parse_app(entry, where)
    if value.sdkappid is None:
        raise ConfigError(f'{where}: "SDKAppID" missing')
    where = f"{where} (SDKAppID {value.sdkappid})"
    if not value.key:
        raise ConfigError(f'{where}: "Key" missing')
    identity = Identity(value.sdkappid, value.admin or settings.admin or DEFAULT_ADMIN, value.key)
    return AppConfig(identity, base_url(_region(entry, where, settings), _endpoint(entry, where, settings)))


def _region(entry: dict[str, object], where: str, settings: Settings) -> str:
    region = entry.get("Region", settings.region)
    if not isinstance(region, str) or region not in REGION_DOMAINS:
        raise ConfigError(f'{where}: unknown "Region" {str(region)[:40]!r}; one of {", ".join(REGION_DOMAINS)}')
    return region


def _endpoint(entry: dict[str, object], where: str, settings: Settings) -> str | None:
    endpoint = entry.get("Endpoint", settings.endpoint)
    if endpoint is not None and (not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://"))):
        raise ConfigError(f'{where}: "Endpoint" must start with http:// or https://, got {str(endpoint)[:80]!r}')
    return endpoint


def choose(configs: Mapping[int, AppConfig], sdkappid: int | None) -> AppConfig:
    """The app a modification names; with one app its Sdkappid may be left out."""
    if sdkappid is None:
        if len(configs) == 1:
            return next(iter(configs.values()))
        raise UnknownApp(f"required: this deployment serves several apps ({_listed(configs)})")
    config = configs.get(sdkappid)
    if config is not None:
        return config
    if len(configs) == 1:
        raise UnknownApp(SDKAPPID_MISMATCH.format(got=sdkappid, expected=_listed(configs)))
    raise UnknownApp(f"{sdkappid} is not an app this deployment serves ({_listed(configs)})")


def _listed(configs: Mapping[int, AppConfig]) -> str:
    return ", ".join(str(sdkappid) for sdkappid in configs)


# --- the apps at run time ---------------------------------------------------------------------------


class App:
    """One app's own state: its identity source, base URL, UserSig cache and rate limiter."""

    def __init__(self, config: AppConfig, identities: IdentityProvider, limiter: Pacer) -> None:
        self.sdkappid = config.sdkappid
        self.base = config.base
        self.identities = identities
        self.limiter = limiter
        self.sigs = UserSigCache()


class _Fixed:
    """An identity that never changes (the key came from the environment)."""

    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    def get(self, force: bool = False) -> Identity:
        return self._identity


class Apps:
    """The apps of IM_APPS or of the single-app variables: known at cold start, keys in the environment."""

    def __init__(self, configs: Mapping[int, AppConfig], limiter_for: LimiterFor) -> None:
        self._apps = {sdkappid: App(config, _Fixed(config.identity), limiter_for(sdkappid))
                      for sdkappid, config in configs.items()}
        self._configs = dict(configs)
        self.only = next(iter(configs)) if len(configs) == 1 else None

    def resolve(self, sdkappid: int | None, force: bool = False) -> tuple[App, Identity]:
        """The app a modification names and who signs for it; UnknownApp when it names none served here."""
        config = choose(self._configs, sdkappid)
        return self._apps[config.sdkappid], config.identity

    def configs(self, force: bool = False) -> dict[int, AppConfig]:
        """Every app served (as SecretApps.configs; nothing to fetch here)."""
        return dict(self._configs)


class SecretApps:
    """Apps from a secret store: the secret holds one app (bare key or JSON) or ``{"apps": [...]}``.

    The secret is read through the store's cache (IM_SECRET_MAX_AGE) on every look-up, so an app added to
    the secret is served without a restart; each app's state is made on its first use and kept.
    """

    only: int | None = None  # not known before the secret is read

    def __init__(self, settings: Settings, source: SecretSource, fetch: Fetch, limiter_for: LimiterFor) -> None:
        self._settings = settings
        self._fetch = fetch
        self._limiter_for = limiter_for
        self.source = source
        self._where = f"secret {source}"
        self._lock = threading.Lock()
        self._apps: dict[int, App] = {}
        self._parsed: tuple[str | bytes, dict[int, AppConfig]] | None = None

    def resolve(self, sdkappid: int | None, force: bool = False) -> tuple[App, Identity]:
        """As ``Apps.resolve``, from one read of the secret: through the store's cache, or not with ``force``."""
        before = self._parsed
        config = choose(self.configs(force), sdkappid)
        if force:
            old = before[1].get(config.sdkappid) if before else None
            logger.info("secret re-fetched", extra={"secret_source": str(self.source), "sdkappid": config.sdkappid,
                                                    "rotated": old is not None and old != config})
        with self._lock:
            app = self._apps.get(config.sdkappid)
            if app is None:
                app = App(config, _SecretIdentity(self, config.sdkappid), self._limiter_for(config.sdkappid))
                self._apps[config.sdkappid] = app
        return app, config.identity

    def configs(self, force: bool = False) -> dict[int, AppConfig]:
        """Every app the secret holds now; ``force`` skips the store's cache (rotation)."""
        try:
            raw = self._fetch(force)
        except FetchFailed as failure:
            raise SecretUnavailable.from_failure(self.source, failure) from None
        parsed = self._parsed
        if parsed is None or parsed[0] != raw:
            parsed = self._parsed = (raw, self._parse(raw))
        return parsed[1]

    def _parse(self, raw: str | bytes) -> dict[int, AppConfig]:
        value = parse_value(raw, self._where)
        if value.apps is None:
            identity = resolve(self._settings, value, self._where)
            return {identity.sdkappid: AppConfig(identity, base_url(self._settings.region, self._settings.endpoint))}
        if self._settings.sdkappid is not None:
            raise ConfigError(f'IM_SDKAPPID: leave it unset; {self._where} holds several apps ({{"apps": [...]}})')
        return parse_apps(value.apps, f'{self._where} "apps"', self._settings)


class _SecretIdentity:
    """One app's identity, read from the shared secret; ``force`` re-fetches it (rotation)."""

    def __init__(self, apps: SecretApps, sdkappid: int) -> None:
        self._apps = apps
        self._sdkappid = sdkappid

    def get(self, force: bool = False) -> Identity:
        try:
            return self._apps.resolve(self._sdkappid, force)[1]
        except UnknownApp:  # taken out of the secret since this app was first used
            source = self._apps.source
            raise SecretUnavailable(f"secret {source} no longer holds SDKAppID {self._sdkappid}", source=str(source),
                                    name=source.name, error_code="AppRemoved", missing=True) from None


class Registry(Protocol):
    """What the service asks: the app a modification names, and the one app when that is known up front."""

    only: int | None

    def resolve(self, sdkappid: int | None, force: bool = False) -> tuple[App, Identity]: ...


def registry_for(settings: Settings, limiter_for: LimiterFor | None = None,
                 environ: Mapping[str, str] | None = None) -> Registry:
    """The apps the settings name; a bad IM_APPS (or single-app setting) raises ConfigError here, at cold start."""
    limiter_for = limiter_for or (lambda _sdkappid: RateLimiter(settings.rate_limit))
    if settings.apps_json is not None:
        return Apps(parse_apps_json(settings.apps_json.get_secret_value(), settings), limiter_for)
    if settings.secret_source is not None:
        if settings.secret_key is not None:
            raise ConfigError("IM_SECRET_KEY and IM_SECRET_SOURCE: set one of them, not both")
        return SecretApps(settings, *stored_secret(settings, environ), limiter_for)
    identity = EnvIdentity(settings).get()
    return Apps({identity.sdkappid: AppConfig(identity, base_url(settings.region, settings.endpoint))}, limiter_for)


class OnlyApp:
    """The identity of the one app a registry serves, for code that signs for a single app."""

    def __init__(self, apps: Registry) -> None:
        self._apps = apps

    def get(self, force: bool = False) -> Identity:
        return self._apps.resolve(None, force)[1]


def provider_for(settings: Settings, environ: Mapping[str, str] | None = None) -> IdentityProvider:
    """The single app's identity source the settings name; ``force`` re-fetches a stored secret.

    ``environ`` (default ``os.environ``) holds Tencent's SCF credentials; boto3 reads its own.
    """
    return OnlyApp(registry_for(settings, environ=environ))
