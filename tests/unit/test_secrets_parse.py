"""IM_SECRET_SOURCE and secret values, parsed without any store: forms, shapes, merging, messages."""

from __future__ import annotations

import logging
import traceback

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handler import config
from handler.apps import OnlyApp, SecretApps, provider_for
from handler.config import ConfigError
from handler.im.codes import SECRET_UNAVAILABLE
from handler.im.ratelimit import RateLimiter
from handler.secret_sources import Fetch, FetchFailed
from handler.secrets import (
    DEFAULT_ADMIN,
    SecretSource,
    SecretUnavailable,
    parse_source,
    parse_value,
    resolve,
)

KEY = "UNIT-KEY-0d5f3a9be1c24e77"
WHERE = "secret aws-ssm:/im/key"


def stored(chosen: config.Settings, source: SecretSource, fetch: Fetch) -> OnlyApp:
    """The one app's identity from a scripted store, read the way the handler reads it."""
    return OnlyApp(SecretApps(chosen, source, fetch, lambda _sdkappid: RateLimiter(5)))


def settings(**env: str) -> config.Settings:
    return config.load({"IM_SECRET_SOURCE": "aws-ssm:/im/key", **env})


# -- IM_SECRET_SOURCE -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("aws-secretsmanager:im/app-key", SecretSource("aws-secretsmanager", "im/app-key")),
    ("aws-secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:im-AbCdEf",
     SecretSource("aws-secretsmanager", "arn:aws:secretsmanager:us-east-1:123456789012:secret:im-AbCdEf")),
    ("aws-ssm:/timpush/app-key", SecretSource("aws-ssm", "/timpush/app-key")),
    ("tencent-ssm:ap-guangzhou/im-app-key", SecretSource("tencent-ssm", "im-app-key", "ap-guangzhou")),
    ("tencent-ssm:ap-shanghai-fsi/im_key@v2.1", SecretSource("tencent-ssm", "im_key", "ap-shanghai-fsi", "v2.1")),
    ("  aws-ssm:/p  ", SecretSource("aws-ssm", "/p")),
])
def test_each_source_form_parses(text: str, expected: SecretSource) -> None:
    assert parse_source(text) == expected
    assert str(parse_source(text)) == text.strip()


@pytest.mark.parametrize("text", [
    "", "aws-ssm", "aws-ssm:", "vault:secret/im", "aws-secretsmanager:has space",
    "tencent-ssm:im-app-key", "tencent-ssm:ap-guangzhou/", "tencent-ssm:ap-guangzhou/im@",
    "tencent-ssm:AP-GUANGZHOU/im", "tencent-ssm:ap-guangzhou/im/key", "tencent-ssm:ap-guangzhou/-im",
    "tencent-ssm:ap-guangzhou/im@v 1",
])
def test_a_malformed_source_is_a_config_error_naming_the_variable(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^IM_SECRET_SOURCE: expected aws-secretsmanager:NAME"):
        parse_source(text)


@given(st.text(max_size=60))
def test_parse_source_either_parses_or_names_the_variable(text: str) -> None:
    try:
        source = parse_source(text)
    except ConfigError as exc:
        assert str(exc).startswith("IM_SECRET_SOURCE: ")
    else:
        assert parse_source(str(source)) == source


# -- secret values ----------------------------------------------------------------------------------

def test_a_bare_key_is_the_key_alone() -> None:
    value = parse_value(f"  {KEY}\n", WHERE)
    assert (value.key, value.sdkappid, value.admin, value.is_json) == (KEY, None, None, False)


def test_json_gives_all_three() -> None:
    value = parse_value(f'{{"SDKAppID": 1400000001, "Key": "{KEY}", "Admin": "ops", "Note": "extra"}}', WHERE)
    assert (value.key, value.sdkappid, value.admin) == (KEY, 1400000001, "ops")


def test_binary_utf8_is_text_and_a_digit_string_appid_is_a_number() -> None:
    value = parse_value(f'{{"SDKAppID": "1400000001", "Key": "{KEY}"}}'.encode(), WHERE)
    assert value.sdkappid == 1400000001


@pytest.mark.parametrize(("raw", "message"), [
    ('{"Key": ', "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"Key": 5}', '"Key" must be a string'),
    ('{"Key": "k", "SDKAppID": -1}', '"SDKAppID" must be a positive integer'),
    ('{"Key": "k", "SDKAppID": true}', '"SDKAppID" must be a positive integer'),
    ('{"Key": "k", "Admin": ""}', '"Admin" must be a string'),
    (f"{KEY} trailing words", "neither JSON"),
    (b"\xff\xfe", "binary, not UTF-8"),
])
def test_a_misshapen_value_is_a_config_error_without_the_value(raw: str | bytes, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_value(raw, WHERE)
    text = str(caught.value)
    assert text.startswith(WHERE)
    assert message in text
    assert KEY not in text


def test_a_json_parse_error_hides_its_cause() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_value(f'{{"Key": "{KEY}", oops}}', WHERE)
    assert caught.value.__suppress_context__ is True
    assert KEY not in "".join(traceback.format_exception(caught.value))


# -- merging with the environment ----------------------------------------------------------------

def test_env_fills_what_a_bare_key_lacks_and_admin_defaults() -> None:
    identity = resolve(settings(IM_SDKAPPID="1400000001"), parse_value(KEY, WHERE), WHERE)
    assert (identity.sdkappid, identity.admin, identity.key) == (1400000001, DEFAULT_ADMIN, KEY)


def test_the_secret_fills_what_env_lacks() -> None:
    value = parse_value(f'{{"SDKAppID": 1400000002, "Key": "{KEY}", "Admin": "ops"}}', WHERE)
    identity = resolve(settings(), value, WHERE)
    assert (identity.sdkappid, identity.admin) == (1400000002, "ops")


def test_agreeing_env_and_secret_are_fine() -> None:
    value = parse_value(f'{{"SDKAppID": 1400000002, "Key": "{KEY}", "Admin": "ops"}}', WHERE)
    identity = resolve(settings(IM_SDKAPPID="1400000002", IM_ADMIN="ops"), value, WHERE)
    assert (identity.sdkappid, identity.admin) == (1400000002, "ops")


def test_disagreements_are_one_config_error_naming_both_places() -> None:
    value = parse_value(f'{{"SDKAppID": 1400000002, "Key": "{KEY}", "Admin": "ops"}}', WHERE)
    with pytest.raises(ConfigError) as caught:
        resolve(settings(IM_SDKAPPID="1400000001", IM_ADMIN="root"), value, WHERE)
    text = str(caught.value)
    assert 'IM_SDKAPPID (1400000001) and "SDKAppID" in secret aws-ssm:/im/key (1400000002) disagree' in text
    assert "IM_ADMIN ('root') and \"Admin\" in secret aws-ssm:/im/key ('ops') disagree" in text
    assert KEY not in text


def test_missing_pieces_are_one_message_naming_where_each_was_looked_for() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(settings(), parse_value('{"Admin": "ops"}', WHERE), WHERE)
    assert str(caught.value) == (
        'Key missing: looked in secret aws-ssm:/im/key ("Key" in its JSON); '
        "SDKAppID missing: looked in IM_SDKAPPID (unset) and in secret aws-ssm:/im/key "
        '(no "SDKAppID" in its JSON)'
    )


def test_a_bare_key_without_env_appid_says_so() -> None:
    with pytest.raises(ConfigError, match="a bare key, which carries no SDKAppID"):
        resolve(settings(), parse_value(KEY, WHERE), WHERE)


def test_an_empty_value_is_a_missing_key() -> None:
    expected = r"^Key missing: looked in secret aws-ssm:/im/key \(its value, which is empty\)$"
    with pytest.raises(ConfigError, match=expected):
        resolve(settings(IM_SDKAPPID="1400000001"), parse_value("  ", WHERE), WHERE)


# -- the provider, with a scripted fetch -------------------------------------------------------

class Script:
    """A Fetch that answers from a list, recording the ``force`` flags it got."""

    def __init__(self, *answers: str | FetchFailed) -> None:
        self.answers = list(answers)
        self.forced: list[bool] = []

    def __call__(self, force: bool) -> str:
        self.forced.append(force)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, FetchFailed):
            raise answer
        return answer


def test_force_reaches_the_fetch_and_rotation_is_logged_without_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    script = Script(KEY, KEY + "-rotated")
    provider = stored(settings(IM_SDKAPPID="1400000001"), parse_source("aws-ssm:/im/key"), script)
    first, second = provider.get(), provider.get(force=True)
    assert script.forced == [False, True]
    assert (first.key, second.key) == (KEY, KEY + "-rotated")
    record = next(r for r in caplog.records if r.message == "secret re-fetched")
    assert (record.secret_source, record.rotated) == ("aws-ssm:/im/key", True)  # type: ignore[attr-defined]
    assert KEY not in caplog.text


def test_a_fetch_failure_becomes_secret_unavailable_naming_source_and_code() -> None:
    failure = FetchFailed("ResourceNotFound", "The secret `im-key` does not exist.", missing=True)
    provider = stored(settings(), parse_source("tencent-ssm:ap-guangzhou/im-key@v1"), Script(failure))
    with pytest.raises(SecretUnavailable) as caught:
        provider.get()
    exc = caught.value
    assert str(exc) == ("secret tencent-ssm:ap-guangzhou/im-key@v1 not found: ResourceNotFound "
                        "(The secret `im-key` does not exist.)")
    assert (exc.code, exc.error_code, exc.missing, exc.name) == (SECRET_UNAVAILABLE, "ResourceNotFound", True, "im-key")
    assert exc.__suppress_context__ is True


def test_an_unavailable_store_is_not_missing() -> None:
    provider = stored(settings(), parse_source("aws-ssm:/im/key"), Script(FetchFailed("ThrottlingException")))
    with pytest.raises(SecretUnavailable, match=r"could not be fetched: ThrottlingException$") as caught:
        provider.get()
    assert caught.value.missing is False


def test_fetch_failed_detail_is_one_line_and_bounded() -> None:
    failure = FetchFailed("ServerNetworkError", "<html>\n" + "x" * 500)
    assert "\n" not in failure.detail and len(failure.detail) == 200


def test_secret_unavailable_still_takes_a_plain_message() -> None:
    exc = SecretUnavailable("down")
    assert (str(exc), exc.code, exc.missing) == ("down", SECRET_UNAVAILABLE, False)


# -- provider_for --------------------------------------------------------------------------------

def test_key_and_source_together_are_refused() -> None:
    both = config.load({"IM_SECRET_SOURCE": "aws-ssm:/k", "IM_SECRET_KEY": KEY, "IM_SDKAPPID": "1400000001"})
    with pytest.raises(ConfigError, match="IM_SECRET_KEY and IM_SECRET_SOURCE"):
        provider_for(both)


def test_a_malformed_source_fails_in_provider_for() -> None:
    with pytest.raises(ConfigError, match="^IM_SECRET_SOURCE"):
        provider_for(config.load({"IM_SECRET_SOURCE": "vault:im"}))


def test_the_env_key_still_works() -> None:
    identity = provider_for(config.load({"IM_SECRET_KEY": KEY, "IM_SDKAPPID": "1400000001"})).get(force=True)
    assert (identity.sdkappid, identity.admin, identity.key) == (1400000001, DEFAULT_ADMIN, KEY)
    assert KEY not in repr(identity)


# -- Tencent settings that fail before any request ----------------------------------------------

def test_tencent_endpoint_forms() -> None:
    from handler.secret_sources.tencent_ssm import http_profile

    local = http_profile("http://127.0.0.1:18080")
    assert (local.scheme, local.endpoint, local.reqTimeout) == ("http", "127.0.0.1:18080", 5)
    bare = http_profile("ssm.ap-guangzhou.tencentcloudapi.com")
    assert (bare.scheme, bare.endpoint) == ("https", "ssm.ap-guangzhou.tencentcloudapi.com")
    assert http_profile(None).endpoint is None
    with pytest.raises(ConfigError, match="^TENCENTCLOUD_SSM_ENDPOINT"):
        http_profile("http://127.0.0.1:18080/some/path")


def test_tencent_credentials_from_scf_variables() -> None:
    from handler.secret_sources.tencent_ssm import credentials

    cred = credentials({"TENCENTCLOUD_SECRETID": "AKIDx", "TENCENTCLOUD_SECRETKEY": "k",
                        "TENCENTCLOUD_SESSIONTOKEN": "tok"})
    assert cred.get_credential_info() == ("AKIDx", "k", "tok")
    assert credentials({"TENCENTCLOUD_SECRETID": "AKIDx", "TENCENTCLOUD_SECRETKEY": "k"}).token is None
    with pytest.raises(ConfigError, match="set both or neither"):
        credentials({"TENCENTCLOUD_SECRETID": "AKIDx"})
    with pytest.raises(ConfigError) as caught:
        credentials({"TENCENTCLOUD_SECRETID": "AKIDx", "TENCENTCLOUD_SECRETKEY": " padded-secret "})
    assert "padded-secret" not in str(caught.value)
