"""Configuration: one validated object, parsed once per process from the environment (DESIGN table).

A bad value fails with one message naming the variable, at cold start, before any message is touched.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from handler.im.regions import REGION_DOMAINS

SINK_PREFIXES = ("file:", "sqs:", "tdmq-cmq:")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
CLASS_NAMES = frozenset({"invalid", "too_late", "retryable", "auth", "unknown"})


class ConfigError(Exception):
    """The environment is wrong; the message names the variable and never holds a secret."""


def _check_sink(value: str, var: str) -> str:
    if not value.startswith(SINK_PREFIXES) or len(value.split(":", 1)[1]) == 0:
        raise ValueError(f"{var} must be file:PATH, sqs:QUEUE_URL or tdmq-cmq:REGION/QUEUE, got {value!r}")
    return value


class Settings(BaseModel):
    """Every variable the function reads. Field aliases are the variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    sdkappid: Annotated[int | None, Field(alias="IM_SDKAPPID", gt=0)] = None
    admin: Annotated[str | None, Field(alias="IM_ADMIN", min_length=1, max_length=32)] = None
    secret_key: Annotated[SecretStr | None, Field(alias="IM_SECRET_KEY")] = None
    secret_source: Annotated[str | None, Field(alias="IM_SECRET_SOURCE")] = None
    secret_max_age: Annotated[int, Field(alias="IM_SECRET_MAX_AGE", ge=0)] = 300
    region: Annotated[str, Field(alias="IM_REGION")] = "china"
    endpoint: Annotated[str | None, Field(alias="IM_ENDPOINT")] = None
    rate_limit: Annotated[float, Field(alias="IM_RATE_LIMIT", ge=0)] = 5.0
    rate_fallback: Annotated[float, Field(alias="IM_RATE_FALLBACK", gt=0)] = 1.0
    max_receives: Annotated[int, Field(alias="IM_MAX_RECEIVES", ge=1)] = 5
    max_attempts: Annotated[int, Field(alias="IM_MAX_ATTEMPTS", ge=1, le=20)] = 4
    dead_letter: Annotated[str, Field(alias="DEAD_LETTER")] = "file:dead-letters.jsonl"
    dead_letter_routes: Annotated[dict[str, str], Field(alias="DEAD_LETTER_ROUTES")] = {}
    work_queue: Annotated[str | None, Field(alias="WORK_QUEUE")] = None
    tencent_ssm_endpoint: Annotated[str | None, Field(alias="TENCENTCLOUD_SSM_ENDPOINT")] = None
    state_store: Annotated[str | None, Field(alias="IM_STATE_STORE")] = None
    # Several apps (DESIGN IM_APPS): kept as the raw JSON text; handler.apps parses it with plain functions
    # when the process's apps are built, so every problem names IM_APPS and the entry.
    apps_json: Annotated[SecretStr | None, Field(alias="IM_APPS")] = None  # holds keys: kept out of repr

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value not in REGION_DOMAINS:
            raise ValueError(f"unknown region {value!r}; one of {', '.join(REGION_DOMAINS)}")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value.rstrip("/") if value else None

    @field_validator("state_store")
    @classmethod
    def _state_store(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, _, table = value.partition(":")
        if scheme != "dynamodb" or not _TABLE_NAME.fullmatch(table):
            raise ValueError(f"must be dynamodb:TABLE (3-255 of A-Z a-z 0-9 _ . -), got {value!r}")
        return value

    @field_validator("dead_letter")
    @classmethod
    def _dead_letter_sink(cls, value: str) -> str:
        return _check_sink(value, "DEAD_LETTER")

    @field_validator("dead_letter_routes", mode="before")
    @classmethod
    def _routes_json(cls, value: object) -> object:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object from an error class or code to a sink")
        for key, sink in value.items():
            if key not in CLASS_NAMES and not key.lstrip("-").isdigit():
                raise ValueError(f"key {key!r} is neither an error class ({', '.join(sorted(CLASS_NAMES))}) "
                                 "nor a code")
            _check_sink(str(sink), f"DEAD_LETTER_ROUTES[{key!r}]")
        return value

    @property
    def identity_from_env(self) -> bool:
        """True when the key is given directly (laptop use) rather than through a secret store."""
        return self.secret_source is None


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        var = str(item["loc"][0]) if item["loc"] else "configuration"
        parts.append(f"{var}: {item['msg']}")
    return "; ".join(parts)


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse the environment; raise ConfigError naming each bad variable."""
    env = os.environ if environ is None else environ
    fields = {f.alias for f in Settings.model_fields.values() if f.alias}
    values = {name: env[name] for name in fields if env.get(name, "") != ""}
    if "DEAD_LETTER" not in values and env.get("AWS_LAMBDA_FUNCTION_NAME"):
        raise ConfigError("DEAD_LETTER: required on Lambda (file:PATH or sqs:QUEUE_URL)")
    if "DEAD_LETTER" not in values and env.get("TENCENTCLOUD_RUNENV") == "SCF":
        raise ConfigError("DEAD_LETTER: required on SCF (tdmq-cmq:REGION/QUEUE or file:PATH)")
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    if settings.apps_json is not None:
        _check_apps_alone(settings)
    elif settings.secret_key is None and settings.secret_source is None:
        raise ConfigError("IM_SECRET_KEY or IM_SECRET_SOURCE (or IM_APPS): one of them must say where the app key "
                          "is")
    return settings


def _check_apps_alone(settings: Settings) -> None:
    """IM_APPS names each app with its key; the single-app variables would say it a second time."""
    clashing = [name for name, value in (("IM_SDKAPPID", settings.sdkappid), ("IM_SECRET_KEY", settings.secret_key),
                                         ("IM_SECRET_SOURCE", settings.secret_source)) if value is not None]
    if clashing:
        raise ConfigError(f"IM_APPS and {', '.join(clashing)}: set IM_APPS alone (each entry has its SDKAppID and "
                          'Key), or the single-app variables; a secret may hold several apps as {"apps": [...]}')


@cache
def settings() -> Settings:
    """The process's settings, parsed on first use (cold start) and kept for warm invocations."""
    return load()
