"""The app key from each store over real HTTP: moto server (Secrets Manager, SSM) and a fake Tencent SSM.

Each store is reached by its real SDK; counts are taken at the server, so "cached" means no request.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from handler import config
from handler.apps import provider_for
from handler.config import ConfigError
from handler.im.codes import SECRET_UNAVAILABLE
from handler.secrets import IdentityProvider, SecretUnavailable
from tests.fakes.moto_server import DUMMY_ENV, MotoServer
from tests.fakes.tencent_ssm import FakeTencentSSM

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

APPID = 1400000001
KEY = "SEKRET-a8f3c1d9e7b24f05"  # distinctive, so any leak is found by a plain substring search
ROTATED = "SEKRET-ROTATED-5c0e9d2a7f31"
TC_ID, TC_KEY, TC_TOKEN = "AKIDfaketestid", "fake-tc-secret-key", "fake-session-token"
SCF_ENV = {"TENCENTCLOUD_SECRETID": TC_ID, "TENCENTCLOUD_SECRETKEY": TC_KEY}


def json_secret(key: str = KEY, **extra: Any) -> str:
    return json.dumps({"SDKAppID": APPID, "Key": key, **extra})


def settings(source: str, **env: str) -> config.Settings:
    return config.load({"IM_SECRET_SOURCE": source, **env})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable(provider: IdentityProvider, force: bool = False) -> SecretUnavailable:
    with pytest.raises(SecretUnavailable) as caught:
        provider.get(force=force)
    exc = caught.value
    assert exc.code == SECRET_UNAVAILABLE
    for leak in (KEY, ROTATED, TC_KEY, TC_TOKEN):
        assert leak not in str(exc)
        assert leak not in "".join(traceback.format_exception(exc))
    return exc


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


# -- AWS: moto in server mode ----------------------------------------------------------------------

@pytest.fixture
def aws(moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> MotoServer:
    """Dummy credentials, us-east-1, every boto3 client sent to moto through AWS_ENDPOINT_URL."""
    for name, value in DUMMY_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_SSM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
    moto.reset()
    return moto


@pytest.fixture
def secretsmanager(aws: MotoServer) -> Any:
    return boto3.client("secretsmanager")


@pytest.fixture
def ssm(aws: MotoServer) -> Any:
    return boto3.client("ssm")


def test_secrets_manager_bare_key_with_env_appid(secretsmanager: Any) -> None:
    secretsmanager.create_secret(Name="im/app-key", SecretString=KEY)
    identity = provider_for(settings("aws-secretsmanager:im/app-key", IM_SDKAPPID=str(APPID))).get()
    assert (identity.sdkappid, identity.admin, identity.key) == (APPID, "administrator", KEY)


def test_secrets_manager_json_by_arn_and_binary(secretsmanager: Any) -> None:
    arn = secretsmanager.create_secret(Name="im/json", SecretString=json_secret(Admin="ops"))["ARN"]
    identity = provider_for(settings(f"aws-secretsmanager:{arn}")).get()
    assert (identity.sdkappid, identity.admin, identity.key) == (APPID, "ops", KEY)
    secretsmanager.create_secret(Name="im/binary", SecretBinary=json_secret().encode())
    assert provider_for(settings("aws-secretsmanager:im/binary")).get().key == KEY


def test_secrets_manager_caches_and_force_picks_up_rotation(secretsmanager: Any, aws: MotoServer) -> None:
    # Given a secret read once and cached
    secretsmanager.create_secret(Name="im/rotating", SecretString=json_secret())
    provider = provider_for(settings("aws-secretsmanager:im/rotating"))
    assert all(provider.get().key == KEY for _ in range(5))
    assert aws.count("secretsmanager.GetSecretValue") == 1
    # When the key is rotated, the cache still answers the old one
    secretsmanager.put_secret_value(SecretId="im/rotating", SecretString=json_secret(ROTATED))
    assert provider.get().key == KEY
    # Then a forced get (after an auth answer) fetches the new one, and caches it
    assert provider.get(force=True).key == ROTATED
    assert provider.get().key == ROTATED
    assert aws.count("secretsmanager.GetSecretValue") == 2


def test_max_age_zero_fetches_every_time(secretsmanager: Any, aws: MotoServer) -> None:
    secretsmanager.create_secret(Name="im/uncached", SecretString=json_secret())
    provider = provider_for(settings("aws-secretsmanager:im/uncached", IM_SECRET_MAX_AGE="0"))
    for _ in range(3):
        provider.get()
    assert aws.count("secretsmanager.GetSecretValue") == 3


def test_secrets_manager_missing_secret(aws: MotoServer) -> None:
    exc = unavailable(provider_for(settings("aws-secretsmanager:im/absent", IM_SDKAPPID=str(APPID))))
    assert (exc.missing, exc.error_code, exc.name) == (True, "ResourceNotFoundException", "im/absent")
    assert str(exc).startswith("secret aws-secretsmanager:im/absent not found: ResourceNotFoundException")


def test_secrets_manager_endpoint_down_after_a_good_fetch(secretsmanager: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a key already in the process
    secretsmanager.create_secret(Name="im/app-key", SecretString=json_secret())
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    provider = provider_for(settings("aws-secretsmanager:im/app-key"))  # its client now points nowhere
    # Then a fetch fails as unavailable (retryable), naming the secret and the error, not the value
    exc = unavailable(provider, force=True)
    assert (exc.missing, exc.error_code) == (False, "EndpointConnectionError")
    assert "aws-secretsmanager:im/app-key" in str(exc)


def test_secrets_manager_disagreeing_appid_is_a_config_error(secretsmanager: Any) -> None:
    secretsmanager.create_secret(Name="im/app-key", SecretString=json_secret())
    provider = provider_for(settings("aws-secretsmanager:im/app-key", IM_SDKAPPID="1400000009"))
    with pytest.raises(ConfigError) as caught:
        provider.get()
    assert str(caught.value) == ('IM_SDKAPPID (1400000009) and "SDKAppID" in secret '
                                 "aws-secretsmanager:im/app-key (1400000001) disagree")


def test_ssm_securestring_is_decrypted_and_cached(ssm: Any, aws: MotoServer) -> None:
    ssm.put_parameter(Name="/timpush/app-key", Value=json_secret(Admin="ops"), Type="SecureString")
    provider = provider_for(settings("aws-ssm:/timpush/app-key"))
    identity = provider.get()
    assert (identity.sdkappid, identity.admin, identity.key) == (APPID, "ops", KEY)  # not "kms:alias/..."
    provider.get()
    assert aws.count("ssm.GetParameter") == 1


def test_ssm_rotation_and_missing_parameter(ssm: Any) -> None:
    ssm.put_parameter(Name="/timpush/bare", Value=KEY, Type="SecureString")
    provider = provider_for(settings("aws-ssm:/timpush/bare", IM_SDKAPPID=str(APPID)))
    assert provider.get().key == KEY
    ssm.put_parameter(Name="/timpush/bare", Value=ROTATED, Type="SecureString", Overwrite=True)
    assert provider.get(force=True).key == ROTATED
    ssm.delete_parameter(Name="/timpush/bare")
    exc = unavailable(provider, force=True)
    assert (exc.missing, exc.error_code) == (True, "ParameterNotFound")
    assert str(exc).startswith("secret aws-ssm:/timpush/bare not found: ParameterNotFound")


# -- Tencent Cloud SSM: the fake API 3.0 endpoint ---------------------------------------------------

@pytest.fixture
def tencent() -> Iterator[FakeTencentSSM]:
    with FakeTencentSSM(credentials={TC_ID: TC_KEY}) as fake:
        yield fake


def tencent_provider(fake: FakeTencentSSM, path: str, environ: dict[str, str] | None = None,
                     **env: str) -> IdentityProvider:
    chosen = settings(f"tencent-ssm:ap-guangzhou/{path}", TENCENTCLOUD_SSM_ENDPOINT=fake.endpoint, **env)
    return provider_for(chosen, environ=SCF_ENV if environ is None else environ)


def test_tencent_pinned_version_reads_that_version_only(tencent: FakeTencentSSM) -> None:
    tencent.put_secret("im-app-key", "v1", json_secret(Admin="ops"))
    tencent.put_secret("im-app-key", "v2", json_secret(ROTATED))
    identity = tencent_provider(tencent, "im-app-key@v1").get()
    assert (identity.sdkappid, identity.admin, identity.key) == (APPID, "ops", KEY)
    assert [(r.action, r.body) for r in tencent.requests] == [
        ("GetSecretValue", {"SecretName": "im-app-key", "VersionId": "v1"})]
    request = tencent.requests[0]
    assert request.headers["x-tc-region"] == "ap-guangzhou"
    assert request.headers["authorization"].startswith(f"TC3-HMAC-SHA256 Credential={TC_ID}/")


def test_tencent_without_version_reads_the_newest(tencent: FakeTencentSSM) -> None:
    tencent.put_secret("im-app-key", "v2", json_secret(ROTATED), create_time=1_700_000_200)
    tencent.put_secret("im-app-key", "v1", json_secret(), create_time=1_700_000_100)
    assert tencent_provider(tencent, "im-app-key").get().key == ROTATED
    assert [r.action for r in tencent.requests] == ["ListSecretVersionIds", "GetSecretValue"]
    assert tencent.requests[1].body["VersionId"] == "v2"


def test_tencent_caches_and_force_picks_up_a_new_version(tencent: FakeTencentSSM) -> None:
    # Given the newest version read once and cached
    tencent.put_secret("im-app-key", "v1", KEY)
    provider = tencent_provider(tencent, "im-app-key", IM_SDKAPPID=str(APPID))
    assert all(provider.get().key == KEY for _ in range(5))
    assert tencent.count() == 2  # one List, one Get
    # When a new version is added, the cache still answers the old one
    tencent.put_secret("im-app-key", "v2", ROTATED)
    assert provider.get().key == KEY
    # Then a forced get finds the new version
    assert provider.get(force=True).key == ROTATED
    assert tencent.count("GetSecretValue") == 2 and tencent.requests[-1].body["VersionId"] == "v2"


def test_tencent_binary_secret(tencent: FakeTencentSSM) -> None:
    tencent.put_secret("im-binary", "v1", json_secret().encode())
    assert tencent_provider(tencent, "im-binary@v1").get().key == KEY


@pytest.mark.parametrize(("path", "detail"), [("im-absent", "does not exist"), ("im-app-key@v9", "v9")])
def test_tencent_missing_secret_or_version(tencent: FakeTencentSSM, path: str, detail: str) -> None:
    tencent.put_secret("im-app-key", "v1", json_secret())
    exc = unavailable(tencent_provider(tencent, path))
    assert (exc.missing, exc.error_code) == (True, "ResourceNotFound")
    assert f"tencent-ssm:ap-guangzhou/{path} not found: ResourceNotFound" in str(exc) and detail in str(exc)


def test_tencent_denied_is_unavailable_not_missing(tencent: FakeTencentSSM) -> None:
    tencent.put_secret("im-app-key", "v1", json_secret())
    tencent.deny("im-app-key")
    exc = unavailable(tencent_provider(tencent, "im-app-key@v1"))
    assert (exc.missing, exc.error_code) == (False, "UnauthorizedOperation")


def test_tencent_wrong_signing_key_is_refused_by_the_fake(tencent: FakeTencentSSM) -> None:
    tencent.put_secret("im-app-key", "v1", json_secret())
    wrong = {"TENCENTCLOUD_SECRETID": TC_ID, "TENCENTCLOUD_SECRETKEY": "not-the-key"}
    exc = unavailable(tencent_provider(tencent, "im-app-key@v1", environ=wrong))
    assert exc.error_code == "AuthFailure.SignatureFailure"


def test_tencent_session_token_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeTencentSSM(credentials={TC_ID: TC_KEY}, require_token=TC_TOKEN) as fake:
        fake.put_secret("im-app-key", "v1", json_secret())
        # Without the token the fake refuses, as the real service refuses temporary keys without one
        assert unavailable(tencent_provider(fake, "im-app-key@v1")).error_code == "AuthFailure.TokenFailure"
        # From the process environment, as SCF injects it
        for name, value in {**SCF_ENV, "TENCENTCLOUD_SESSIONTOKEN": TC_TOKEN}.items():
            monkeypatch.setenv(name, value)
        chosen = settings("tencent-ssm:ap-guangzhou/im-app-key@v1", TENCENTCLOUD_SSM_ENDPOINT=fake.endpoint)
        assert provider_for(chosen).get().key == KEY
        assert fake.requests[-1].headers["x-tc-token"] == TC_TOKEN


def test_tencent_sdk_standard_chain_is_the_fallback(tencent: FakeTencentSSM, monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK's own environment provider reads TENCENTCLOUD_SECRET_ID / _KEY (with underscores)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", TC_ID)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", TC_KEY)
    tencent.put_secret("im-app-key", "v1", json_secret())
    assert tencent_provider(tencent, "im-app-key@v1", environ={}).get().key == KEY
    assert "x-tc-token" not in tencent.requests[-1].headers


def test_tencent_endpoint_down_after_a_good_fetch(tencent: FakeTencentSSM) -> None:
    tencent.put_secret("im-app-key", "v1", json_secret())
    provider = tencent_provider(tencent, "im-app-key")
    assert provider.get().key == KEY
    tencent.stop()
    assert provider.get().key == KEY  # still cached
    exc = unavailable(provider, force=True)
    assert (exc.missing, exc.error_code) == (False, "ClientNetworkError")
    assert "tencent-ssm:ap-guangzhou/im-app-key could not be fetched: ClientNetworkError" in str(exc)
    # And it comes back: the next forced get succeeds
    tencent.start()
    assert provider.get(force=True).key == KEY


def test_tencent_read_timeout(tencent: FakeTencentSSM, monkeypatch: pytest.MonkeyPatch) -> None:
    from handler.secret_sources import tencent_ssm

    monkeypatch.setattr(tencent_ssm, "REQUEST_TIMEOUT", 1)
    tencent.put_secret("im-app-key", "v1", json_secret())
    tencent.set_delay(1.5)
    exc = unavailable(tencent_provider(tencent, "im-app-key@v1"))
    assert exc.error_code == "ClientNetworkError" and "timed out" in str(exc)


def test_tencent_internal_error_is_unavailable(tencent: FakeTencentSSM) -> None:
    tencent.put_secret("im-app-key", "v1", json_secret())
    tencent.fail_next("InternalError", "internal error")
    provider = tencent_provider(tencent, "im-app-key@v1")
    assert unavailable(provider).error_code == "InternalError"
    assert provider.get().key == KEY


# -- nothing secret in any log or exception --------------------------------------------------------

def test_no_value_in_logs_or_errors_across_stores(secretsmanager: Any, ssm: Any, tencent: FakeTencentSSM,
                                                  caplog: pytest.LogCaptureFixture,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)  # the SDKs log response bodies at DEBUG unless held back
    seeding = caplog.at_level(logging.WARNING)  # the test's own writes carry the value in their requests
    with seeding:
        secretsmanager.create_secret(Name="im/app-key", SecretString=json_secret())
        ssm.put_parameter(Name="/im/app-key", Value=json_secret(), Type="SecureString")
    tencent.put_secret("im-app-key", "v1", json_secret())
    session = {**SCF_ENV, "TENCENTCLOUD_SESSIONTOKEN": TC_TOKEN}
    providers = [provider_for(settings("aws-secretsmanager:im/app-key")),
                 provider_for(settings("aws-ssm:/im/app-key")),
                 tencent_provider(tencent, "im-app-key", environ=session)]
    # Given each store answers, rotates, and finally fails
    for provider in providers:
        assert provider.get().key == KEY
    with caplog.at_level(logging.WARNING):
        secretsmanager.put_secret_value(SecretId="im/app-key", SecretString=json_secret(ROTATED))
        ssm.put_parameter(Name="/im/app-key", Value=json_secret(ROTATED), Type="SecureString", Overwrite=True)
    tencent.put_secret("im-app-key", "v2", json_secret(ROTATED))
    assert [p.get(force=True).key for p in providers] == [ROTATED] * 3
    secretsmanager.delete_secret(SecretId="im/app-key", ForceDeleteWithoutRecovery=True)
    ssm.delete_parameter(Name="/im/app-key")
    tencent.delete_secret("im-app-key")
    errors = [unavailable(p, force=True) for p in providers]
    # Then the logs saw the fetches (so the check is not vacuous) but never a value or a token
    assert any(r.name.startswith("botocore") for r in caplog.records)
    assert any(r.message == "secret re-fetched" and r.rotated for r in caplog.records)  # type: ignore[attr-defined]
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err + "".join(map(repr, errors))
    for leak in (KEY, ROTATED, TC_KEY, TC_TOKEN):
        assert leak not in text


# -- imports stay lazy ---------------------------------------------------------------------------------

def run_python(code: str, env: dict[str, str] | None = None) -> str:
    command = [sys.executable, "-c", code]  # our interpreter running our code
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)  # noqa: S603
    assert result.returncode == 0, result.stderr
    return result.stdout


# The bare botocore package is imported by powertools' user-agent hook (a fraction of a millisecond);
# what costs is a session or a client.
HEAVY = ("boto3", "botocore.session", "botocore.client", "tencentcloud", "aws_lambda_powertools.utilities.parameters")
# which of HEAVY are loaded (a None entry in sys.modules is a blocked import, not a loaded one)
LOADED = (f"sorted({{h for m, mod in list(sys.modules.items()) for h in {HEAVY!r}"
          " if mod is not None and (m == h or m.startswith(h + '.'))})")


def test_importing_secrets_imports_no_cloud_sdk() -> None:
    assert run_python(f"import sys, handler.secrets; print({LOADED})").strip() == "[]"


def test_an_aws_source_never_imports_the_tencent_sdk() -> None:
    code = ("import sys\nfrom handler import config\nfrom handler.apps import provider_for\n"
            "provider_for(config.load({'IM_SECRET_SOURCE': 'aws-ssm:/k'}))\n"
            "print(any(m.startswith('tencentcloud') for m in sys.modules), 'boto3' in sys.modules)")
    env = {**_base_env(), **DUMMY_ENV}
    assert run_python(code, env).split() == ["False", "True"]


def test_a_tencent_source_works_without_boto3(tencent: FakeTencentSSM) -> None:
    # Given a Python where boto3 and botocore cannot be imported, as on SCF
    tencent.put_secret("im-app-key", "v1", json_secret())
    code = (
        "import sys\nsys.modules['boto3'] = None\nsys.modules['botocore'] = None\n"
        "from handler import config\nfrom handler.apps import provider_for\n"
        f"settings = config.load({{'IM_SECRET_SOURCE': 'tencent-ssm:ap-guangzhou/im-app-key',"
        f" 'TENCENTCLOUD_SSM_ENDPOINT': {tencent.endpoint!r}}})\n"
        f"identity = provider_for(settings, environ={SCF_ENV!r}).get()\n"
        f"print(identity.sdkappid, {LOADED})"
    )
    # Then the key is fetched and neither AWS piece was loaded
    assert run_python(code, _base_env()).strip() == f"{APPID} ['tencentcloud']"


def _base_env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    return {**keep, "NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(REPO)}
