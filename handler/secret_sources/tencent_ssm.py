"""Tencent Cloud SSM (Secrets Manager) through the tencentcloud SDK's ``SsmClient`` (API.md section 6).

``TencentSSMProvider`` keeps the powertools ``BaseProvider`` contract (``get(name, max_age, force_fetch)``,
one cached value per name for ``max_age`` seconds, nothing cached at 0) without subclassing it: importing
powertools Parameters runs its package ``__init__``, which imports boto3 for the AWS providers. A
Tencent deployment carries no boto3, and a cold start should not pay for it.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.ssm.v20190923 import models, ssm_client

from handler.config import ConfigError
from handler.secret_sources import Fetch, FetchFailed, keep_values_out_of_logs

REQUEST_TIMEOUT = 5  # seconds per request (HttpProfile.reqTimeout; the SDK's default is 60)
DEFAULT_MAX_AGE = 300  # seconds, as powertools
MISSING_CODES = frozenset({"ResourceNotFound"})
SDK_LOGGER = "tencentcloud_sdk_common"  # logs request headers (X-TC-Token) and response bodies at DEBUG
ENDPOINT_VAR = "TENCENTCLOUD_SSM_ENDPOINT"
# SCF injects the function role's credentials under these names; the SDK's own env provider reads others.
ID_VAR, KEY_VAR, TOKEN_VAR = "TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN"


class TencentSSMProvider:
    """Secret values by ``NAME@VERSION``, or ``NAME`` for the newest version, cached like powertools."""

    def __init__(self, client: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()  # one fetch at a time: concurrent misses share the answer
        self._store: dict[str, tuple[str | bytes, float]] = {}

    def get(self, name: str, max_age: int = DEFAULT_MAX_AGE, force_fetch: bool = False) -> str | bytes:
        """The cached value, or a fresh one when absent, older than ``max_age`` or ``force_fetch``."""
        with self._lock:
            cached = self._store.get(name)
            if cached and not force_fetch and self._clock() < cached[1]:
                return cached[0]
            value = self._get(name)
            if max_age > 0:
                self._store[name] = (value, self._clock() + max_age)
            return value

    def clear_cache(self) -> None:
        with self._lock:
            self._store.clear()

    def _get(self, name: str) -> str | bytes:
        secret_name, _, version = name.partition("@")
        try:  # the SDK wraps every failure (network, credential chain, Response.Error) in its exception
            response = self._client.GetSecretValue(_request(
                models.GetSecretValueRequest(), SecretName=secret_name,
                VersionId=version or self._newest_version(secret_name)))
        except TencentCloudSDKException as exc:
            raise FetchFailed(str(exc.code), str(exc.message or ""), missing=exc.code in MISSING_CODES) from None
        return _value_of(response)

    def _newest_version(self, secret_name: str) -> str:
        response = self._client.ListSecretVersionIds(
            _request(models.ListSecretVersionIdsRequest(), SecretName=secret_name))
        versions = list(enumerate(response.Versions or []))
        if not versions:
            raise FetchFailed("ResourceNotFound", "the secret has no versions", missing=True)
        newest = max(versions, key=lambda item: (item[1].CreateTime or 0, item[0]))  # later wins a tie
        return str(newest[1].VersionId)


def _request(model: Any, **fields: str) -> Any:
    for field, value in fields.items():
        setattr(model, field, value)
    return model


def _value_of(response: Any) -> str | bytes:
    """Exactly one of SecretString and SecretBinary (base64) is non-empty."""
    if response.SecretString:
        return str(response.SecretString)
    try:
        binary = base64.b64decode(response.SecretBinary or "", validate=True)
    except (binascii.Error, ValueError):
        raise FetchFailed("InvalidSecretBinary", "SecretBinary is not base64") from None
    if not binary:
        raise FetchFailed("EmptyValue", "the secret version holds neither SecretString nor SecretBinary")
    return binary


def fetch_for(region: str, name: str, max_age: int, endpoint: str | None,
              environ: Mapping[str, str]) -> Fetch:
    """A Fetch for ``name`` (``NAME`` or ``NAME@VERSION``) in ``region``; bad settings raise ConfigError."""
    keep_values_out_of_logs(SDK_LOGGER)
    profile = ClientProfile(httpProfile=http_profile(endpoint), language="en-US")
    provider = TencentSSMProvider(ssm_client.SsmClient(credentials(environ), region, profile))

    def fetch(force: bool) -> str | bytes:
        return provider.get(name, max_age=max_age, force_fetch=force)

    return fetch


def http_profile(endpoint: str | None, variable: str = ENDPOINT_VAR) -> HttpProfile:
    """The SDK's profile; an endpoint override (from ``variable``) must be given to the constructor (API.md 6.3)."""
    if not endpoint:
        return HttpProfile(reqTimeout=REQUEST_TIMEOUT)
    url = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/") or url.query:
        raise ConfigError(f"{variable}: expected http(s)://HOST[:PORT] or HOST[:PORT], got {endpoint!r}")
    return HttpProfile(protocol=url.scheme, endpoint=url.netloc, reqTimeout=REQUEST_TIMEOUT)


class _StandardChain:
    """The SDK's DefaultCredentialProvider (TENCENTCLOUD_SECRET_ID/KEY, profile file, CVM role, TKE OIDC),
    resolved at the first request; the client wants ``get_credential_info``, which the chain lacks."""

    def __init__(self) -> None:
        self._chain = credential.DefaultCredentialProvider()

    def get_credential_info(self) -> tuple[str, str, str | None]:
        info: tuple[str, str, str | None] = self._chain.get_credential().get_credential_info()
        return info


def credentials(environ: Mapping[str, str]) -> Any:
    """SCF's injected role credentials when present, else the SDK's standard chain."""
    secret_id, secret_key = environ.get(ID_VAR, ""), environ.get(KEY_VAR, "")
    if not secret_id and not secret_key:
        return _StandardChain()
    if not (secret_id and secret_key):
        raise ConfigError(f"{ID_VAR} and {KEY_VAR}: set both or neither")
    try:
        return credential.Credential(secret_id, secret_key, environ.get(TOKEN_VAR) or None)
    except TencentCloudSDKException as exc:  # empty or padded values; the message holds neither
        raise ConfigError(f"{ID_VAR} / {KEY_VAR}: {exc.message}") from None
