"""Configuration: one validated object, parsed once per process from the environment (DESIGN table).

A bad value fails with one message naming the variable and showing the value (never a secret's), at cold
start, before any message is touched. Each variable has one parser; the reasons keep the wording they had when
pydantic parsed them, so logs and alarms that match them keep working. Plain Python because this runs at every
cold start (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from functools import cache
from types import MappingProxyType
from typing import NamedTuple

from handler.im.regions import REGION_DOMAINS
from handler.masking import mask

SINK_PREFIXES = ("file:", "sqs:", "tdmq-cmq:")
_TABLE_NAME = r"[A-Za-z0-9_.-]{3,255}"
CLASS_NAMES = frozenset({"invalid", "too_late", "retryable", "auth", "unknown"})
ADMIN_MAX = 32  # characters; the IM admin identifier's limit
MAX_ATTEMPTS_MAX = 20
SECRET_VARIABLES = frozenset({"IM_SECRET_KEY", "IM_APPS"})  # their values never appear in a message
SHOWN_MAX = 60  # characters of a bad value a message shows


class ConfigError(Exception):
    """The environment is wrong; the message names the variable and never holds a secret."""


class Secret:
    """A value that never shows in a repr, a log or an exception (the app key)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_NO_ROUTES: Mapping[str, str] = MappingProxyType({})


# NamedTuple rather than dataclass here and in every class a cold start builds: a dataclass's generated methods
# cost about four times as much to build (docs/benchmarks.md, issue 29); immutable and shown by value all the same.
class Settings(NamedTuple):
    """Every variable the function reads (``VARIABLES`` names them), parsed and checked by ``load``."""

    sdkappid: int | None = None
    admin: str | None = None
    secret_key: Secret | None = None
    secret_source: str | None = None
    secret_max_age: int = 300
    region: str = "china"
    endpoint: str | None = None
    rate_limit: float = 5.0
    rate_fallback: float = 1.0
    max_receives: int = 5
    max_attempts: int = 4
    dead_letter: str = "file:dead-letters.jsonl"
    dead_letter_routes: Mapping[str, str] = _NO_ROUTES
    work_queue: str | None = None
    tencent_ssm_endpoint: str | None = None
    state_store: StoreSpec | None = None  # a Redis URL's password is kept out of its repr
    state_store_password: Secret | None = None  # IM_STATE_STORE_PASSWORD, merged into state_store by load
    state_store_eviction: bool = False  # IM_STATE_STORE_EVICTION=accept: a Redis that may evict keys is used
    # Several apps (DESIGN IM_APPS): kept as the raw JSON text; handler.apps parses it with plain functions
    # when the process's apps are built, so every problem names IM_APPS and the entry.
    apps_json: Secret | None = None  # holds keys: kept out of repr

    @property
    def identity_from_env(self) -> bool:
        """True when the key is given directly (laptop use) rather than through a secret store."""
        return self.secret_source is None


# --- how a value is read: the numbers the way they were read before (whitespace and _ allowed) ------------

_UNREADABLE = "Input should be a valid string, unable to parse raw data as a unicode string"
# Patterns as text: ``re`` compiles each on its first use, so a cold start pays only for those its variables need.
_SURROGATE = "[\ud800-\udfff]"
_INT = r"[+-]?[0-9](?:_?[0-9])*(?:\.0+)?"
_FLOAT = r"(?i)[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)"
_UNDERSCORE = r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])"  # one that is not between two letters or digits


def _unreadable(text: str) -> bool:
    """A lone surrogate: os.environ's stand-in for bytes that are not UTF-8."""
    return not text.isascii() and re.search(_SURROGATE, text) is not None


def _readable(text: str) -> str:
    if _unreadable(text):
        raise ValueError(_UNREADABLE)
    return text.strip()


def _int(text: str) -> int:
    text = _readable(text)
    if not (text.isascii() and text.isdigit()) and not re.fullmatch(_INT, text):  # plain digits: no pattern to compile
        raise ValueError("Input should be a valid integer, unable to parse string as an integer")
    return int(text.split(".")[0])


def _float(text: str) -> float:
    spaced = "_" in text and text != text.strip()  # underscores are taken only in a number without spaces
    text = _readable(text)
    if text.isascii() and text.isdigit():  # the usual "5": no pattern compiled at a cold start
        return float(text)
    if spaced or re.search(_UNDERSCORE, text) or not re.fullmatch(_FLOAT, text.replace("_", "")):
        raise ValueError("Input should be a valid number, unable to parse string as a number")
    return float(text.replace("_", ""))


def _at_least(parse: Callable[[str], float], low: float, high: float | None = None) -> Callable[[str], float]:
    def read(text: str) -> float:
        value = parse(text)
        if not value >= low:  # not "<": NaN is refused too
            raise ValueError(f"Input should be greater than or equal to {low:g}")
        if high is not None and value > high:
            raise ValueError(f"Input should be less than or equal to {high:g}")
        return value

    return read


def _positive(parse: Callable[[str], float]) -> Callable[[str], float]:
    def read(text: str) -> float:
        value = parse(text)
        if not value > 0:  # NaN is refused too
            raise ValueError("Input should be greater than 0")
        return value

    return read


def _admin(text: str) -> str:
    if _unreadable(text):
        raise ValueError(_UNREADABLE)
    if len(text) > ADMIN_MAX:
        raise ValueError(f"String should have at most {ADMIN_MAX} characters")
    return text


# --- the checks each variable states -------------------------------------------------------------------


class _Rule(ValueError):
    """A variable's own rule broken; its message shows the value where it helps (through ``shown``)."""


def shown(text: str) -> str:
    """A bad value as a message shows it: quoted, cut to SHOWN_MAX characters, whatever could be a password
    hidden, judged from the value's shape (``handler.masking``: a typo moves a password out of its place)."""
    text = mask(text)
    return repr(text if len(text) <= SHOWN_MAX else text[:SHOWN_MAX] + "...")


def _problem(var: str, text: str, exc: ValueError) -> str:
    """``VAR: reason``, with the value when the reason does not show it already (a secret's never)."""
    reason = str(exc)
    if var in SECRET_VARIABLES or shown(text) in reason:
        return f"{var}: {reason}"
    return f"{var}: {reason} (got {shown(text)})"


def _check_sink(value: str, var: str) -> str:
    if not value.startswith(SINK_PREFIXES) or len(value.split(":", 1)[1]) == 0:
        raise _Rule(f"{var} must be file:PATH, sqs:QUEUE_URL or tdmq-cmq:REGION/QUEUE, got {shown(value)}")
    return value


def _region(value: str) -> str:
    if value not in REGION_DOMAINS:
        raise _Rule(f"unknown region {shown(value)}; one of {', '.join(REGION_DOMAINS)}")
    return value


def _endpoint(value: str) -> str | None:
    if not value.startswith(("http://", "https://")):
        raise _Rule(f"must start with http:// or https://, got {shown(value)}")
    return value.rstrip("/")


def _routes(text: str) -> dict[str, str]:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise _Rule(str(exc)) from None
    except RecursionError:
        raise _Rule("nested too deeply to be read") from None
    if not isinstance(value, dict):
        raise _Rule("must be a JSON object from an error class or code to a sink")
    for key, sink in value.items():
        if key not in CLASS_NAMES and not key.lstrip("-").isdigit():
            raise _Rule(f"key {key!r} is neither an error class ({', '.join(sorted(CLASS_NAMES))}) nor a code")
        _check_sink(str(sink), f"DEAD_LETTER_ROUTES[{key!r}]")
    return value


class StoreSpec(str):
    """``IM_STATE_STORE`` as given: a Redis URL may carry the password, which its repr leaves out."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask(self))


def _state_store(value: str) -> StoreSpec:
    scheme, _, rest = value.partition(":")
    if scheme in ("redis", "rediss"):
        return _redis_url(value)
    if scheme != "dynamodb" or not re.fullmatch(_TABLE_NAME, rest):
        raise _Rule("must be dynamodb:TABLE (3-255 of A-Z a-z 0-9 _ . -) or redis://[:PASSWORD@]HOST:PORT[/DB] "
                    f"(rediss:// with TLS), got {shown(value)}")
    return StoreSpec(value)


def _redis_url(value: str) -> StoreSpec:
    from urllib.parse import urlsplit  # only for a Redis store (requests imports it anyway)

    problem = _Rule(f"must be redis://[:PASSWORD@]HOST:PORT[/DB] (or rediss://), got {shown(value)}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise problem from None
    if not parts.hostname or port is None or not re.fullmatch(r"/?[0-9]{0,5}", parts.path) \
            or parts.query or parts.fragment:
        raise problem
    return StoreSpec(value)


def _eviction(value: str) -> bool:
    if value.strip() != "accept":
        raise _Rule("must be accept (use a Redis that may evict keys, knowing the order can be lost) or unset, "
                    f"got {shown(value)}")
    return True


def eviction_accepted(environ: Mapping[str, str] | None = None) -> bool:
    """IM_STATE_STORE_EVICTION alone, as the Redis home reads it at its first use; ConfigError when malformed."""
    value = (os.environ if environ is None else environ).get("IM_STATE_STORE_EVICTION", "")
    try:
        return _eviction(value) if value else False
    except ValueError as exc:
        raise ConfigError(_problem("IM_STATE_STORE_EVICTION", value, exc)) from None


def _with_password(settings: Settings) -> Settings:
    """IM_STATE_STORE_PASSWORD goes into the Redis URL (percent-encoded), which must not carry one itself."""
    from urllib.parse import quote, urlsplit

    store, password = settings.state_store, settings.state_store_password
    if store is None or password is None:
        return settings
    parts = urlsplit(store)
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError("IM_STATE_STORE_PASSWORD: only a redis:// or rediss:// IM_STATE_STORE takes a password")
    if parts.password is not None:
        raise ConfigError("IM_STATE_STORE_PASSWORD and a password in IM_STATE_STORE: give it once")
    netloc = f"{parts.username or ''}:{quote(password.get_secret_value(), safe='')}@{parts.netloc.split('@')[-1]}"
    return settings._replace(state_store=StoreSpec(parts._replace(netloc=netloc).geturl()))


def _same(text: str) -> str:
    return text


# Field, variable, parser; in this order problems are listed.
VARIABLES: tuple[tuple[str, str, Callable[[str], object]], ...] = (
    ("sdkappid", "IM_SDKAPPID", _positive(_int)),
    ("admin", "IM_ADMIN", _admin),
    ("secret_key", "IM_SECRET_KEY", Secret),
    ("secret_source", "IM_SECRET_SOURCE", _same),
    ("secret_max_age", "IM_SECRET_MAX_AGE", _at_least(_int, 0)),
    ("region", "IM_REGION", _region),
    ("endpoint", "IM_ENDPOINT", _endpoint),
    ("rate_limit", "IM_RATE_LIMIT", _at_least(_float, 0)),
    ("rate_fallback", "IM_RATE_FALLBACK", _positive(_float)),
    ("max_receives", "IM_MAX_RECEIVES", _at_least(_int, 1)),
    ("max_attempts", "IM_MAX_ATTEMPTS", _at_least(_int, 1, MAX_ATTEMPTS_MAX)),
    ("dead_letter", "DEAD_LETTER", lambda value: _check_sink(value, "DEAD_LETTER")),
    ("dead_letter_routes", "DEAD_LETTER_ROUTES", _routes),
    ("work_queue", "WORK_QUEUE", _same),
    ("tencent_ssm_endpoint", "TENCENTCLOUD_SSM_ENDPOINT", _same),
    ("state_store", "IM_STATE_STORE", _state_store),
    ("state_store_password", "IM_STATE_STORE_PASSWORD", Secret),
    ("state_store_eviction", "IM_STATE_STORE_EVICTION", _eviction),
    ("apps_json", "IM_APPS", Secret),
)


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse the environment; raise ConfigError naming each bad variable (an empty one counts as unset)."""
    env = os.environ if environ is None else environ
    if not env.get("DEAD_LETTER") and env.get("AWS_LAMBDA_FUNCTION_NAME"):
        raise ConfigError("DEAD_LETTER: required on Lambda (file:PATH or sqs:QUEUE_URL)")
    if not env.get("DEAD_LETTER") and env.get("TENCENTCLOUD_RUNENV") == "SCF":
        raise ConfigError("DEAD_LETTER: required on SCF (tdmq-cmq:REGION/QUEUE or file:PATH)")
    values, problems = {}, []
    for name, var, parse in VARIABLES:
        if env.get(var, "") != "":
            try:
                values[name] = parse(env[var])
            except ValueError as exc:
                problems.append(_problem(var, env[var], exc))
    if problems:
        raise ConfigError("; ".join(problems))
    settings = _with_password(Settings(**values))  # type: ignore[arg-type]  # each parser returns its field's type
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
