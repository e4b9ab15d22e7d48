"""Where the app key comes from: the environment (laptops) or a secret store (IM_SECRET_SOURCE).

Parses the source and the value (one app, or ``{"apps": [...]}`` for ``handler.apps``). The service asks
for an Identity and, after an auth answer, asks again with ``force=True`` so a rotated key is picked up
within the invocation. A store that cannot answer raises SecretUnavailable (code -5, retryable); a secret
of the wrong shape, or one that disagrees with the environment, is a ConfigError. No message ever holds
the secret's value.

``stored_secret`` imports the one cloud SDK the source names; importing this module imports none.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import NamedTuple, Protocol

from handler.config import ConfigError, Settings
from handler.im.codes import SECRET_UNAVAILABLE
from handler.im.usersig import Identity
from handler.secret_sources import Fetch, FetchFailed

DEFAULT_ADMIN = "administrator"
ADMIN_MAX_LENGTH = 32
SOURCE_VAR = "IM_SECRET_SOURCE"
AWS_SECRETS_MANAGER, AWS_SSM, TENCENT_SSM = "aws-secretsmanager", "aws-ssm", "tencent-ssm"
SOURCE_FORMS = f"{AWS_SECRETS_MANAGER}:NAME, {AWS_SSM}:NAME or {TENCENT_SSM}:REGION/NAME[@VERSION]"
JSON_SHAPE = '{"SDKAppID": 1400000000, "Key": "...", "Admin": "administrator"}'

# Tencent SSM: region like ap-guangzhou; name of letters, digits, - and _ (128 max); version id (64 max).
# As text: ``re`` compiles it on first use, so only a Tencent SSM source pays for it at a cold start.
_TENCENT_PATH = (
    r"(?P<region>[a-z]{2,}(?:-[a-z0-9]+)+)/(?P<name>[A-Za-z0-9][A-Za-z0-9_-]{0,127})"
    r"(?:@(?P<version>[A-Za-z0-9._-]{1,64}))?"
)


class SecretUnavailable(Exception):
    """The secret could not be fetched (denied, missing, endpoint down): code -5, class retryable.

    ``missing`` tells a secret that does not exist (a configuration error: HTTP 500) from a store
    that did not answer (HTTP 503). ``error_code`` is the store's own code, e.g. ResourceNotFound.
    """

    code = SECRET_UNAVAILABLE

    def __init__(self, message: str, *, source: str = "", name: str = "", error_code: str = "",
                 missing: bool = False) -> None:
        super().__init__(message)
        self.source = source
        self.name = name
        self.error_code = error_code
        self.missing = missing

    @classmethod
    def from_failure(cls, source: SecretSource, failure: FetchFailed) -> SecretUnavailable:
        what = "not found" if failure.missing else "could not be fetched"
        message = f"secret {source} {what}: {failure.code}"  # the source names the secret
        if failure.detail:
            message += f" ({failure.detail})"
        return cls(message, source=str(source), name=source.name, error_code=failure.code,
                   missing=failure.missing)


class IdentityProvider(Protocol):
    def get(self, force: bool = False) -> Identity: ...


class SecretSource(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    """IM_SECRET_SOURCE, parsed: the store, the secret's name, and for Tencent its region and version."""

    kind: str
    name: str
    region: str = ""
    version: str | None = None

    def __str__(self) -> str:
        if self.kind == TENCENT_SSM:
            return f"{self.kind}:{self.region}/{self.name}" + (f"@{self.version}" if self.version else "")
        return f"{self.kind}:{self.name}"


def parse_source(text: str) -> SecretSource:
    """Parse IM_SECRET_SOURCE; anything else than the three forms is a ConfigError naming the variable."""
    kind, colon, rest = text.strip().partition(":")
    if not colon or not rest:
        raise _bad_source(text, "")
    if kind in (AWS_SECRETS_MANAGER, AWS_SSM):
        if any(char.isspace() for char in rest):
            raise _bad_source(text, "a name holds no spaces")
        return SecretSource(kind, rest)  # a name or an ARN (ARNs hold colons)
    if kind == TENCENT_SSM:
        match = re.fullmatch(_TENCENT_PATH, rest)
        if match is None:
            raise _bad_source(text, "e.g. tencent-ssm:ap-guangzhou/im-app-key or ...@v2")
        return SecretSource(kind, match["name"], match["region"], match["version"])
    raise _bad_source(text, f"unknown store {kind!r}")


def _bad_source(text: str, hint: str) -> ConfigError:
    return ConfigError(f"{SOURCE_VAR}: expected {SOURCE_FORMS}, got {text[:200]!r}" + (f"; {hint}" if hint else ""))


class SecretValue(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    """What a secret holds; the key stays out of repr."""

    key: str
    sdkappid: int | None = None
    admin: str | None = None
    is_json: bool = False
    apps: object = None  # the "apps" list of a secret holding several apps

    def __repr__(self) -> str:  # the key and the apps (with their keys) stay out
        return f"SecretValue(sdkappid={self.sdkappid!r}, admin={self.admin!r}, is_json={self.is_json!r})"


def parse_value(raw: str | bytes, where: str) -> SecretValue:
    """A bare key, or JSON ``{"SDKAppID", "Key", "Admin"}``; ``where`` names the secret in errors."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{where}: the value is binary, not UTF-8 text") from None
    text = raw.strip()
    if not text.startswith(("{", "[")):
        if any(char.isspace() for char in text):
            raise ConfigError(f"{where}: the value is neither JSON {JSON_SHAPE} nor a bare key (one word)")
        return SecretValue(key=text)
    try:
        doc = json.loads(text)
    except ValueError:
        raise ConfigError(f"{where}: the value looks like JSON but is not valid JSON; "
                          f"expected {JSON_SHAPE}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: the value is not a JSON object")
    return _from_json(doc, where)


def _from_json(doc: dict[str, object], where: str) -> SecretValue:
    if "apps" in doc:
        if set(doc) & {"SDKAppID", "Key", "Admin"}:
            raise ConfigError(f'{where}: holds either "apps" (several apps) or one app\'s SDKAppID, Key and Admin, '
                              "not both")
        return SecretValue(key="", is_json=True, apps=doc["apps"])
    return parse_app(doc, where)


def parse_app(doc: dict[str, object], where: str) -> SecretValue:
    """One app's ``SDKAppID``, ``Key`` and ``Admin``, each checked when present (a secret, or an IM_APPS entry)."""
    key, sdkappid, admin = doc.get("Key"), doc.get("SDKAppID"), doc.get("Admin")
    if key is not None and not isinstance(key, str):
        raise ConfigError(f'{where}: "Key" must be a string')
    if isinstance(sdkappid, str) and sdkappid.strip().isdigit():
        sdkappid = int(sdkappid)
    if sdkappid is not None and (not isinstance(sdkappid, int) or isinstance(sdkappid, bool) or sdkappid <= 0):
        raise ConfigError(f'{where}: "SDKAppID" must be a positive integer')
    if admin is not None and (not isinstance(admin, str) or not 0 < len(admin) <= ADMIN_MAX_LENGTH):
        raise ConfigError(f'{where}: "Admin" must be a string of 1 to {ADMIN_MAX_LENGTH} characters')
    return SecretValue(key=(key or "").strip(), sdkappid=sdkappid, admin=admin, is_json=True)


def resolve(settings: Settings, value: SecretValue, where: str) -> Identity:
    """Merge the secret with IM_SDKAPPID / IM_ADMIN: each may come from either, and both must agree."""
    if value.apps is not None:
        raise ConfigError(f'{where}: holds several apps ({{"apps": [...]}}); this use needs a single app')
    problems = _missing(settings, value, where) + _disagreements(settings, value, where)
    if problems:
        raise ConfigError("; ".join(problems))
    sdkappid = settings.sdkappid or value.sdkappid
    assert sdkappid is not None  # noqa: S101  (_missing reported its absence)
    return Identity(sdkappid=sdkappid, admin=settings.admin or value.admin or DEFAULT_ADMIN, key=value.key)


def _missing(settings: Settings, value: SecretValue, where: str) -> list[str]:
    problems = []
    if not value.key:
        looked = '"Key" in its JSON' if value.is_json else "its value, which is empty"
        problems.append(f"Key missing: looked in {where} ({looked})")
    if settings.sdkappid is None and value.sdkappid is None:
        looked = 'no "SDKAppID" in its JSON' if value.is_json else "a bare key, which carries no SDKAppID"
        problems.append(f"SDKAppID missing: looked in IM_SDKAPPID (unset) and in {where} ({looked})")
    return problems


def _disagreements(settings: Settings, value: SecretValue, where: str) -> list[str]:
    problems = []
    if settings.sdkappid is not None and value.sdkappid is not None and settings.sdkappid != value.sdkappid:
        problems.append(f'IM_SDKAPPID ({settings.sdkappid}) and "SDKAppID" in {where} ({value.sdkappid}) disagree')
    if settings.admin is not None and value.admin is not None and settings.admin != value.admin:
        problems.append(f'IM_ADMIN ({settings.admin!r}) and "Admin" in {where} ({value.admin!r}) disagree')
    return problems


class EnvIdentity:
    """The key straight from IM_SECRET_KEY; nothing to re-fetch."""

    def __init__(self, settings: Settings) -> None:
        if settings.sdkappid is None:
            raise ConfigError("IM_SDKAPPID: required when the key comes from IM_SECRET_KEY")
        assert settings.secret_key is not None  # noqa: S101  (config.load guarantees key or source)
        self._identity = Identity(
            sdkappid=settings.sdkappid,
            admin=settings.admin or DEFAULT_ADMIN,
            key=settings.secret_key.get_secret_value(),
        )

    def get(self, force: bool = False) -> Identity:
        return self._identity


def stored_secret(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[SecretSource, Fetch]:
    """IM_SECRET_SOURCE, parsed, and the fetch that reads it (one or several apps: handler.apps)."""
    assert settings.secret_source is not None  # noqa: S101  (callers check)
    source = parse_source(settings.secret_source)
    return source, _fetch_for(source, settings, os.environ if environ is None else environ)


def _fetch_for(source: SecretSource, settings: Settings, environ: Mapping[str, str]) -> Fetch:
    """Import the one SDK the source needs, here and not at module level (cold start)."""
    if source.kind == TENCENT_SSM:
        from handler.secret_sources import tencent_ssm

        name = f"{source.name}@{source.version}" if source.version else source.name
        return tencent_ssm.fetch_for(source.region, name, settings.secret_max_age,
                                     settings.tencent_ssm_endpoint, environ)
    from handler.secret_sources import aws

    make = aws.secrets_manager if source.kind == AWS_SECRETS_MANAGER else aws.parameter_store
    return make(source.name, settings.secret_max_age, str(source))
