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


@pytest.mark.parametrize(("env", "field", "value"), [
    ({"IM_RATE_LIMIT": " 2.5 "}, "rate_limit", 2.5),
    ({"IM_RATE_LIMIT": "1_000"}, "rate_limit", 1000.0),
    ({"IM_RATE_LIMIT": "1e3"}, "rate_limit", 1000.0),
    ({"IM_SDKAPPID": "+1_400_000_001"}, "sdkappid", 1400000001),
    ({"IM_MAX_ATTEMPTS": "4.0"}, "max_attempts", 4),
    ({"IM_ENDPOINT": "http://127.0.0.1:8080//"}, "endpoint", "http://127.0.0.1:8080"),
    ({"IM_ADMIN": "é" * 32}, "admin", "é" * 32),
], ids=["spaces", "underscores", "exponent", "sign-and-underscores", "whole-float", "trailing-slashes", "32-chars"])
def test_values_are_read_as_they_always_were(env: dict[str, str], field: str, value: object) -> None:
    assert getattr(load({**BASE, **env}), field) == value


@pytest.mark.parametrize(("env", "message"), [
    ({"IM_RATE_LIMIT": "nan"}, "IM_RATE_LIMIT: Input should be greater than or equal to 0"),
    ({"IM_RATE_LIMIT": "1__0"}, "IM_RATE_LIMIT: Input should be a valid number, unable to parse string as a number"),
    ({"IM_RATE_LIMIT": " 1_0"}, "IM_RATE_LIMIT: Input should be a valid number, unable to parse string as a number"),
    ({"IM_RATE_FALLBACK": "0"}, "IM_RATE_FALLBACK: Input should be greater than 0"),
    ({"IM_SDKAPPID": "1e3"}, "IM_SDKAPPID: Input should be a valid integer, unable to parse string as an integer"),
    ({"IM_SDKAPPID": "0"}, "IM_SDKAPPID: Input should be greater than 0"),
    ({"IM_MAX_ATTEMPTS": "21"}, "IM_MAX_ATTEMPTS: Input should be less than or equal to 20"),
    ({"IM_ADMIN": "a" * 33}, "IM_ADMIN: String should have at most 32 characters"),
    ({"IM_ADMIN": "adm\udcff"}, "IM_ADMIN: Input should be a valid string, unable to parse raw data as a unicode"),
    ({"IM_REGION": "mars"}, "IM_REGION: unknown region 'mars'; one of china, singapore"),
    ({"DEAD_LETTER_ROUTES": "[" * 100_000}, "DEAD_LETTER_ROUTES: nested too deeply"),
    ({"IM_SDKAPPID": "x", "IM_REGION": "mars", "IM_RATE_LIMIT": "-1"},
     "IM_SDKAPPID: Input should be a valid integer, unable to parse string as an integer (got 'x'); IM_REGION: "),
], ids=["nan", "double-underscore", "spaced-underscore", "fallback-zero", "exponent-int", "zero", "above-max",
        "too-long", "unreadable", "region", "deep-json", "several-in-field-order"])
def test_messages_name_the_variable_and_say_why(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({**BASE, **env})
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("env", "message"), [
    ({"IM_RATE_LIMIT": "5/s"}, "IM_RATE_LIMIT: Input should be a valid number, unable to parse string as a number "
                               "(got '5/s')"),
    ({"IM_MAX_ATTEMPTS": "21"}, "IM_MAX_ATTEMPTS: Input should be less than or equal to 20 (got '21')"),
    ({"IM_REGION": "mars"}, "IM_REGION: unknown region 'mars'; one of"),  # shown once, by the rule itself
    ({"DEAD_LETTER_ROUTES": "{" + "x" * 100}, "DEAD_LETTER_ROUTES: Expecting property name enclosed in double "
                                              "quotes: line 1 column 2 (char 1) (got '{" + "x" * 59 + "...')"),
    ({"IM_STATE_STORE": "redis://:hunter2@cache/0"}, "IM_STATE_STORE: must be redis://[:PASSWORD@]HOST:PORT[/DB] "
                                                     "(or rediss://), got 'redis://***@cache/0'"),
], ids=["rate", "attempts", "region-once", "long-cut", "url-password-hidden"])
def test_messages_show_the_value_without_library_prefixes_or_secrets(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({**BASE, **env})
    assert str(caught.value).startswith(message)
    assert "Value error" not in str(caught.value) and "hunter2" not in str(caught.value)
    assert str(caught.value).count("'mars'") <= 1


PASSWORD = "s3cret-Redis-pw/with:odd@chars"


@pytest.mark.parametrize("value", [f"redis://:{PASSWORD}@127.0.0.1/0", f"redis://:{PASSWORD}@:6379",
                                   f"rediss://:{PASSWORD}@host:6379/x", f"redis://:{PASSWORD}@host:6379/0?db=1"])
def test_a_bad_redis_url_is_refused_without_its_password(value: str) -> None:
    with pytest.raises(ConfigError, match="IM_STATE_STORE") as bad:
        load({"IM_SECRET_KEY": "k", "IM_STATE_STORE": value})
    assert PASSWORD not in str(bad.value) and "***" in str(bad.value)


def test_the_redis_password_is_given_once() -> None:
    base = {"IM_SECRET_KEY": "k", "IM_STATE_STORE_PASSWORD": PASSWORD}
    with pytest.raises(ConfigError, match="give it once") as twice:
        load({**base, "IM_STATE_STORE": "redis://:other@h:6379"})
    with pytest.raises(ConfigError, match="only a redis") as dynamo:
        load({**base, "IM_STATE_STORE": "dynamodb:timpush-state"})
    assert PASSWORD not in str(twice.value) + str(dynamo.value)
    assert load({**base, "IM_STATE_STORE": "rediss://h:6380/2"}).state_store == \
        "rediss://:s3cret-Redis-pw%2Fwith%3Aodd%40chars@h:6380/2"


def test_a_redis_password_stays_out_of_the_settings_repr() -> None:
    from urllib.parse import quote

    in_url = load({"IM_SECRET_KEY": "k", "IM_STATE_STORE": f"rediss://:{quote(PASSWORD, safe='')}@h:6380/0"})
    from_env = load({"IM_SECRET_KEY": "k", "IM_STATE_STORE": "redis://h:6379", "IM_STATE_STORE_PASSWORD": PASSWORD})
    for settings in (in_url, from_env):
        shown = repr(settings)
        assert "***@h:63" in shown and PASSWORD not in shown and quote(PASSWORD, safe="") not in shown
    assert from_env.state_store is not None and quote(PASSWORD, safe="") in from_env.state_store  # redis-py reads it
