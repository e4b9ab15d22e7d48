"""No password in any message, whatever the typo (issue 25 item 6): the shapes a mistyped IM_STATE_STORE takes,
through every place that echoes one (the masking itself, a configuration error, the settings' repr)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from handler.config import ConfigError, load, shown
from handler.masking import mask

PASSWORDS = ["Zq9PWsecret", "Zq9:p@ss/w#rd?x=1&y", "Zq9 with space"]
SHAPES = [
    "redis//:{pw}@host:6379/0",
    "redis:/:{pw}@host:6379/0",
    "rediss:/:{pw}@host:6379/0",
    "redis:{pw}@host:6379",
    "redis://host/0?password={pw}",
    "redis://host:6379/0?db=1&password={pw}",
    "redis://host:6379/0?auth={pw}",
    "{pw}@host:6379",
    "redis://user:{pw}@host",
    "redis://user:{pw}@host:6379/0",
    "redis://:{pw}@host:6379/0",
    "redis://:{pw}",
    "redis://:{pw}@",
    "redis://host:{pw}",
    "rediss://default:{pw}@[::1]:6379/0",
    "  redis://:{pw}@host:6379/0  ",
    "REDIS://:{pw}@HOST:6379/0",
    "reddis://:{pw}@host:6379/0",
    "redis://:{pw}@host:6379/0 # the fleet's",
]


def _pieces(pw: str) -> list[str]:
    """The password and the forms it may take in a URL (percent-encoded)."""
    return [pw, quote(pw, safe=""), quote(pw)]


def _leaks(text: str, pw: str) -> bool:
    return any(piece in text for piece in _pieces(pw))


@pytest.mark.parametrize("pw", PASSWORDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_no_shape_shows_the_password(shape: str, pw: str) -> None:
    value = shape.format(pw=pw)
    assert not _leaks(mask(value), pw)
    assert not _leaks(shown(value), pw)
    try:
        settings = load({"IM_SECRET_KEY": "k", "IM_STATE_STORE": value})
    except ConfigError as refused:
        assert "IM_STATE_STORE" in str(refused) and not _leaks(str(refused), pw)
    else:  # a shape the configuration takes: its repr hides the password
        assert not _leaks(repr(settings), pw) and not _leaks(repr(settings.state_store), pw)


@pytest.mark.parametrize("pw", PASSWORDS)
@pytest.mark.parametrize("shape", ["redis://:{pw}@host:6379/0", "{pw}@host:6379", "redis//:{pw}@host"])
def test_a_password_in_another_variable_is_hidden_too(shape: str, pw: str) -> None:
    value = shape.format(pw=pw)
    for env in ({"DEAD_LETTER": value}, {"IM_ENDPOINT": value}, {"WORK_QUEUE": "x", "IM_REGION": value}):
        with pytest.raises(ConfigError) as refused:
            load({"IM_SECRET_KEY": "k", **env})
        assert not _leaks(str(refused.value), pw)


@pytest.mark.parametrize(("value", "masked"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),  # nothing to hide: shown as given
    ("dynamodb:timpush state", "dynamodb:timpush state"),
    ("redis//:PW@cache:6379/0", "redis//***@cache:6379/0"),  # the typo stays visible
    ("PW@cache:6379", "***@cache:6379"),
    ("redis://cache:6379/0?password=PW", "redis://cache:6379/0?password=***"),
    ("redis://:PW", "redis://:***"),
])
def test_what_is_not_a_password_stays_readable(value: str, masked: str) -> None:
    assert mask(value) == masked
