"""AWS Secrets Manager and SSM Parameter Store through powertools Parameters (cached, ``force_fetch``).

The boto3 clients honour ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` /
``AWS_ENDPOINT_URL_SSM``), which is how tests point them at a moto server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aws_lambda_powertools.utilities.parameters import GetParameterError, SecretsProvider, SSMProvider
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from handler.config import ConfigError
from handler.secret_sources import Fetch, FetchFailed, keep_values_out_of_logs

# A secret fetch sits on the path of a modification: fail in seconds, not in botocore's default minute.
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
MAX_ATTEMPTS = 2  # botocore's "standard" mode counts the first try
BOTO_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT,
    read_timeout=READ_TIMEOUT,
    retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
)

MISSING_CODES = frozenset({"ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound"})

_P = TypeVar("_P")


def secrets_manager(name: str, max_age: int, where: str) -> Fetch:
    """Fetch ``name`` (a name or an ARN) from Secrets Manager; ``where`` names the source in errors."""
    provider = _build(lambda: SecretsProvider(boto_config=BOTO_CONFIG), where)

    def fetch(force: bool) -> str | bytes:
        return _checked(lambda: provider.get(name, max_age=max_age, force_fetch=force))

    return fetch


def parameter_store(name: str, max_age: int, where: str) -> Fetch:
    """Fetch the SecureString parameter ``name``, decrypted."""
    provider = _build(lambda: SSMProvider(boto_config=BOTO_CONFIG), where)

    def fetch(force: bool) -> str | bytes:
        return _checked(lambda: provider.get(name, max_age=max_age, decrypt=True, force_fetch=force))

    return fetch


def _build(make: Callable[[], _P], where: str) -> _P:
    keep_values_out_of_logs("botocore.parsers")  # logs "Response body" at DEBUG
    try:
        return make()
    except BotoCoreError as exc:  # NoRegionError and kin: the environment, not the store
        raise ConfigError(f"IM_SECRET_SOURCE ({where}): cannot build the AWS client: {exc} "
                          "(set AWS_REGION or AWS_DEFAULT_REGION)") from None


def _checked(call: Callable[[], object]) -> str | bytes:
    """Run a powertools get; turn its wrapped failure into FetchFailed with the store's code."""
    try:
        value = call()
    except GetParameterError as exc:
        raise _translate(exc.__context__) from None
    if not isinstance(value, str | bytes):
        raise FetchFailed("EmptyValue", "the store answered without a value")
    return value


def _translate(cause: BaseException | None) -> FetchFailed:
    """powertools re-raises every failure as GetParameterError; the original is its context."""
    if isinstance(cause, ClientError):
        error = cause.response.get("Error", {})
        code = error.get("Code", "ClientError")
        return FetchFailed(code, error.get("Message", ""), missing=code in MISSING_CODES)
    if isinstance(cause, BotoCoreError):  # endpoint down, timeouts, no credentials
        return FetchFailed(type(cause).__name__, str(cause))
    return FetchFailed(type(cause).__name__ if cause else "GetParameterError")
