"""Where the app key comes from: the environment (laptops) or a secret store (IM_SECRET_SOURCE).

The service asks for an Identity and, after an auth answer, asks again with ``force=True`` so a
rotated key is picked up within the invocation.
"""

from __future__ import annotations

from typing import Protocol

from handler.config import ConfigError, Settings
from handler.im.codes import SECRET_UNAVAILABLE
from handler.im.usersig import Identity

DEFAULT_ADMIN = "administrator"


class SecretUnavailable(Exception):
    """The secret could not be fetched (denied, missing, endpoint down): code -5, class retryable."""

    code = SECRET_UNAVAILABLE


class IdentityProvider(Protocol):
    def get(self, force: bool = False) -> Identity: ...


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


def provider_for(settings: Settings) -> IdentityProvider:
    """The identity source the settings name."""
    if settings.secret_source is None:
        return EnvIdentity(settings)
    raise ConfigError(f"IM_SECRET_SOURCE: {settings.secret_source.split(':', 1)[0]!r} is not supported yet")
