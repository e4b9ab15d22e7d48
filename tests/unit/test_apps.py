"""Several apps (DESIGN IM_APPS): parsing, the one-message configuration errors, and choosing an app."""

from __future__ import annotations

import json

import pytest

from handler import config
from handler.apps import Apps, SecretApps, UnknownApp, choose, parse_apps, registry_for
from handler.config import ConfigError
from handler.im.ratelimit import RateLimiter
from handler.secret_sources import FetchFailed
from handler.secrets import SecretSource, SecretUnavailable, parse_value

KEY_A = "key-a-0d9c8b7a6f5e4d3c"
KEY_B = "key-b-9a8b7c6d5e4f3a2b"
APP_A, APP_B = 1400000001, 1400000002
TWO = [{"SDKAppID": APP_A, "Key": KEY_A}, {"SDKAppID": APP_B, "Key": KEY_B, "Admin": "ops", "Region": "singapore"}]


def settings(**env: str) -> config.Settings:
    return config.load({"IM_APPS": json.dumps(TWO), **env})


def registry(apps: object, **env: str) -> Apps:
    found = registry_for(config.load({"IM_APPS": json.dumps(apps), **env}))
    assert isinstance(found, Apps)
    return found


def test_each_app_gets_its_own_key_admin_domain_limiter_and_usersig_cache() -> None:
    apps = registry(TWO)
    a, b = apps.resolve(APP_A)[0], apps.resolve(APP_B)[0]
    assert (a.identities.get().key, a.identities.get().admin, a.base) == (
        KEY_A, "administrator", "https://console.tim.qq.com")
    assert (b.identities.get().key, b.identities.get().admin, b.base) == (
        KEY_B, "ops", "https://adminapisgp.im.qcloud.com")
    assert a.limiter is not b.limiter and a.sigs is not b.sigs
    assert apps.resolve(APP_A)[0] is a  # the same state on every look-up
    assert apps.only is None


def test_endpoint_overrides_region_and_the_environment_fills_what_an_entry_leaves_out() -> None:
    apps = registry([{"SDKAppID": APP_A, "Key": KEY_A, "Region": "tokyo", "Endpoint": "http://127.0.0.1:9/"},
                     {"SDKAppID": APP_B, "Key": KEY_B}],
                    IM_ADMIN="boss", IM_REGION="frankfurt")
    assert apps.resolve(APP_A)[0].base == "http://127.0.0.1:9"
    assert apps.resolve(APP_B)[0].base == "https://adminapiger.im.qcloud.com"
    assert apps.resolve(APP_B)[0].identities.get().admin == "boss"


def test_a_limiter_per_app_comes_from_the_factory() -> None:
    made: list[int] = []

    def limiter_for(sdkappid: int) -> RateLimiter:
        made.append(sdkappid)
        return RateLimiter(2)

    registry_for(settings(), limiter_for)
    assert made == [APP_A, APP_B]


@pytest.mark.parametrize(
    ("apps", "message"),
    [
        ({"SDKAppID": APP_A, "Key": KEY_A}, "IM_APPS: expected a non-empty JSON list"),
        ([], "IM_APPS: expected a non-empty JSON list of {\"SDKAppID\""),
        ([APP_A], "IM_APPS[0]: expected a JSON object"),
        ([{"SDKAppID": APP_A, "Key": KEY_A}, {"Key": KEY_B}], 'IM_APPS[1]: "SDKAppID" missing'),
        ([{"SDKAppID": "abc", "Key": KEY_A}], 'IM_APPS[0]: "SDKAppID" must be a positive integer'),
        ([{"SDKAppID": APP_A}], 'IM_APPS[0] (SDKAppID 1400000001): "Key" missing'),
        ([{"SDKAppID": APP_A, "Key": "  "}], 'IM_APPS[0] (SDKAppID 1400000001): "Key" missing'),
        ([{"SDKAppID": APP_A, "Key": KEY_A}, {"SDKAppID": APP_A, "Key": KEY_B}],
         "IM_APPS[1]: duplicate SDKAppID 1400000001 (already in IM_APPS[0])"),
        ([{"SDKAppID": APP_A, "Key": KEY_A, "Region": "mars"}],
         "IM_APPS[0] (SDKAppID 1400000001): unknown \"Region\" 'mars'; one of china, singapore"),
        ([{"SDKAppID": APP_A, "Key": KEY_A, "Regoin": "tokyo"}], "IM_APPS[0]: unknown field 'Regoin'"),
        ([{"SDKAppID": APP_A, "Key": KEY_A, "Endpoint": "127.0.0.1:8080"}],
         'IM_APPS[0] (SDKAppID 1400000001): "Endpoint" must start with http://'),
        ([{"SDKAppID": APP_A, "Key": KEY_A, "Admin": ""}], 'IM_APPS[0]: "Admin" must be a string of 1 to 32'),
    ],
)
def test_bad_im_apps_fails_with_one_message_naming_the_entry(apps: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        registry(apps)
    assert str(caught.value).startswith(message)
    for key in (KEY_A, KEY_B):
        assert key not in str(caught.value)


def test_im_apps_that_is_not_json_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^IM_APPS: not valid JSON"):
        registry_for(config.load({"IM_APPS": "[{"}))


@pytest.mark.parametrize("other", ["IM_SDKAPPID", "IM_SECRET_KEY", "IM_SECRET_SOURCE"])
def test_im_apps_alone_not_with_the_single_app_variables(other: str) -> None:
    value = {"IM_SDKAPPID": "1400000001", "IM_SECRET_KEY": "k", "IM_SECRET_SOURCE": "aws-ssm:/k"}[other]
    with pytest.raises(ConfigError, match=f"^IM_APPS and {other}: set IM_APPS alone"):
        settings(**{other: value})


def test_the_single_app_variables_still_make_one_app() -> None:
    apps = registry_for(config.load({"IM_SDKAPPID": str(APP_A), "IM_SECRET_KEY": KEY_A, "IM_REGION": "seoul"}))
    assert isinstance(apps, Apps) and apps.only == APP_A
    assert apps.resolve(None)[0].base == "https://adminapikr.im.qcloud.com"
    assert apps.resolve(APP_A)[0].identities.get().key == KEY_A


def test_choose_needs_sdkappid_with_several_apps_and_refuses_an_unknown_one() -> None:
    configs = parse_apps(TWO, "IM_APPS", config.load({"IM_APPS": "[]"}))
    assert choose(configs, APP_B).identity.key == KEY_B
    with pytest.raises(UnknownApp, match=r"^required: this deployment serves several apps \(1400000001, 1400000002\)"):
        choose(configs, None)
    with pytest.raises(UnknownApp, match=r"^1400000009 is not an app this deployment serves"):
        choose(configs, 1400000009)
    one = {APP_A: configs[APP_A]}
    assert choose(one, None) is configs[APP_A]
    with pytest.raises(UnknownApp, match="^1400000009 does not match the configured SDKAppID 1400000001"):
        choose(one, 1400000009)


# -- a secret holding {"apps": [...]} --------------------------------------------------------------


class FakeStore:
    """A secret store's fetch: a value that can be rotated, and a flag that makes it fail."""

    def __init__(self, value: object) -> None:
        self.value = json.dumps(value) if not isinstance(value, str) else value
        self.forced = 0
        self.down = False

    def __call__(self, force: bool) -> str:
        self.forced += force
        if self.down:
            raise FetchFailed("ThrottlingException", "slow down")
        return self.value


SOURCE = SecretSource("aws-secretsmanager", "im/apps")


def secret_apps(store: FakeStore, **env: str) -> SecretApps:
    return SecretApps(config.load({"IM_SECRET_SOURCE": "aws-secretsmanager:im/apps", **env}), SOURCE, store,
                      lambda _sdkappid: RateLimiter(5))


def test_a_secret_holding_apps_serves_each_and_rotates_one_key() -> None:
    store = FakeStore({"apps": TWO})
    apps = secret_apps(store)
    a, b = apps.resolve(APP_A)[0], apps.resolve(APP_B)[0]
    assert (a.identities.get().key, b.base) == (KEY_A, "https://adminapisgp.im.qcloud.com")
    store.value = json.dumps({"apps": [{"SDKAppID": APP_A, "Key": "rotated-a"}, TWO[1]]})
    assert a.identities.get(force=True).key == "rotated-a" and store.forced == 1
    assert b.identities.get().key == KEY_B
    assert apps.resolve(APP_A)[0] is a


def test_a_secret_holding_one_app_still_works_through_the_registry() -> None:
    apps = secret_apps(FakeStore({"SDKAppID": APP_A, "Key": KEY_A}))
    assert apps.resolve(None)[0].identities.get().key == KEY_A
    with pytest.raises(UnknownApp, match="does not match the configured SDKAppID 1400000001"):
        apps.resolve(APP_B)[0]


@pytest.mark.parametrize(
    ("value", "env", "message"),
    [
        ({"apps": {"SDKAppID": APP_A}}, {}, 'secret aws-secretsmanager:im/apps "apps": expected a non-empty JSON list'),
        ({"apps": [TWO[0], TWO[0]]}, {}, 'secret aws-secretsmanager:im/apps "apps"[1]: duplicate SDKAppID 1400000001'),
        ({"apps": [{"SDKAppID": APP_A}]}, {}, '"apps"[0] (SDKAppID 1400000001): "Key" missing'),
        ({"apps": [{**TWO[0], "Region": "moon"}]}, {}, '"apps"[0] (SDKAppID 1400000001): unknown "Region"'),
        ({"apps": TWO, "Key": KEY_A}, {}, 'holds either "apps" (several apps) or one app'),
        ({"apps": TWO}, {"IM_SDKAPPID": str(APP_A)}, "IM_SDKAPPID: leave it unset"),
    ],
)
def test_a_bad_apps_secret_names_the_secret_and_the_entry(value: object, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        secret_apps(FakeStore(value), **env).resolve(APP_A)
    assert message in str(caught.value)
    assert KEY_A not in str(caught.value)


def test_an_app_removed_from_the_secret_is_unavailable_and_an_unreachable_store_is_retryable() -> None:
    store = FakeStore({"apps": TWO})
    apps = secret_apps(store)
    b = apps.resolve(APP_B)[0]
    store.value = json.dumps({"apps": [TWO[0]]})
    with pytest.raises(SecretUnavailable, match="no longer holds SDKAppID 1400000002") as caught:
        b.identities.get(force=True)
    assert caught.value.missing
    store.down = True
    with pytest.raises(SecretUnavailable, match="could not be fetched: ThrottlingException"):
        apps.resolve(APP_A)[0]


def test_parse_value_keeps_the_apps_list_out_of_repr() -> None:
    value = parse_value(json.dumps({"apps": TWO}), "secret x")
    assert value.apps == TWO and KEY_A not in repr(value)


def test_the_keys_in_im_apps_stay_out_of_the_settings_repr() -> None:
    assert KEY_A not in repr(settings()) and KEY_A not in str(settings())
