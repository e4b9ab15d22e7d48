"""The secret source (fetched, never printed) and each app's UserSig (generated and verified locally)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from handler.config import ConfigError, Settings
from handler.secrets import SecretUnavailable
from timpush.check.lines import Line, failed, passed

SECRET_FIX = " ".join((  # noqa: S105 (a sentence, not a password)
    "check the name and region in IM_SECRET_SOURCE and that these credentials (the function's role) may read it:",
    "secretsmanager:GetSecretValue, ssm:GetParameter (with kms:Decrypt), or Tencent SSM GetSecretValue",
    "(docs/secrets.md)"))
USERSIG_FIX = "the key must be the app's key from the IM console (Basic Configuration), as text, without spaces"


def app_checks(settings: Settings) -> Iterator[Line]:
    from handler.apps import AppConfig, Apps, SecretApps, registry_for

    try:
        registry = registry_for(settings)
        assert isinstance(registry, Apps | SecretApps)  # noqa: S101 (registry_for makes one of the two)
        configs: Mapping[int, AppConfig] = registry.configs(force=True)
    except (SecretUnavailable, ConfigError) as exc:  # their messages name the secret, never its value
        yield failed("secret source", str(exc), SECRET_FIX)
        return
    if isinstance(registry, SecretApps):
        yield passed("secret source", f"{registry.source}: fetched ({len(configs)} app(s); the value is not shown)")
    else:
        yield passed("secret source", "none: the key is in the environment (IM_SECRET_KEY or IM_APPS)")
    for sdkappid, config in sorted(configs.items()):
        yield _usersig(sdkappid, config.identity.admin, config.identity.key)


def _usersig(sdkappid: int, admin: str, key: str) -> Line:
    from handler.im.usersig import UserSigError, generate, verify

    what = f"UserSig for SDKAppID {sdkappid}"
    try:
        verify(generate(sdkappid, key, admin), sdkappid, admin, key)  # the validity the handler's cache asks for
    except (UserSigError, ValueError, TypeError) as exc:
        return failed(what, f"could not be made ({exc})", USERSIG_FIX)
    return passed(what, f"generated and verified locally for admin {admin!r} (the server is not asked)")
