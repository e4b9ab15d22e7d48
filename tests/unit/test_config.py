"""Configuration: one validated object; every bad value is named by its variable."""

from __future__ import annotations

import pytest

from handler.config import ConfigError, load

BASE = {"IM_SECRET_KEY": "k", "IM_SDKAPPID": "1400000001"}


def test_defaults() -> None:
    settings = load(BASE)
    assert (settings.region, settings.rate_limit, settings.max_receives, settings.max_attempts) == (
        "china", 5.0, 5, 4)
    assert settings.dead_letter == "file:dead-letters.jsonl"
    assert settings.secret_max_age == 300


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"IM_RATE_LIMIT": "fast"}, "IM_RATE_LIMIT"),
        ({"IM_RATE_LIMIT": "-1"}, "IM_RATE_LIMIT"),
        ({"IM_REGION": "mars"}, "IM_REGION"),
        ({"IM_SDKAPPID": "abc"}, "IM_SDKAPPID"),
        ({"IM_MAX_ATTEMPTS": "0"}, "IM_MAX_ATTEMPTS"),
        ({"IM_MAX_RECEIVES": "0"}, "IM_MAX_RECEIVES"),
        ({"IM_ENDPOINT": "127.0.0.1:8080"}, "IM_ENDPOINT"),
        ({"DEAD_LETTER": "s3:bucket"}, "DEAD_LETTER"),
        ({"DEAD_LETTER_ROUTES": "{not json"}, "DEAD_LETTER_ROUTES"),
        ({"DEAD_LETTER_ROUTES": '{"invalidd": "file:x"}'}, "DEAD_LETTER_ROUTES"),
        ({"DEAD_LETTER_ROUTES": '{"90104": "ftp:x"}'}, "DEAD_LETTER_ROUTES"),
        ({"IM_SECRET_KEY": ""}, "IM_SECRET_KEY or IM_SECRET_SOURCE"),
    ],
)
def test_bad_values_name_their_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({**BASE, **env})
    assert named in str(caught.value)


def test_dead_letter_required_on_lambda() -> None:
    with pytest.raises(ConfigError, match="DEAD_LETTER"):
        load({**BASE, "AWS_LAMBDA_FUNCTION_NAME": "fn"})


def test_routes_parse_and_key_is_secret() -> None:
    settings = load({**BASE, "IM_SECRET_KEY": "TOPSECRET",
                     "DEAD_LETTER_ROUTES": '{"too_late": "file:late.jsonl", "90104": "file:bad.jsonl"}'})
    assert settings.dead_letter_routes == {"too_late": "file:late.jsonl", "90104": "file:bad.jsonl"}
    assert "TOPSECRET" not in repr(settings)
