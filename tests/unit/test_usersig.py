"""UserSig against Tencent's own tls-sig-api-v2 package (the oracle) and the server-side checks."""

from __future__ import annotations

import base64
import json
import threading
import zlib

import pytest
import TLSSigAPIv2

from handler.im import usersig

APP = 1400000001
KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"


def _doc(sig: str) -> dict[str, object]:
    return json.loads(zlib.decompress(base64.b64decode(sig.replace("*", "+").replace("-", "/").replace("_", "="))))


@pytest.mark.parametrize("identifier", ["administrator", "ops_admin-2", "a"])
def test_same_signature_as_the_official_package(identifier: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the official generator pinned to one instant
    monkeypatch.setattr(TLSSigAPIv2.time, "time", lambda: 1_700_000_000)
    theirs = _doc(TLSSigAPIv2.TLSSigAPIv2(APP, KEY).gen_sig(identifier, 86400))
    # When ours signs the same request
    ours = _doc(usersig.generate(APP, KEY, identifier, 86400, now=1_700_000_000))
    # Then every field, the HMAC above all, is the same
    assert ours == theirs


def test_official_package_sig_verifies_with_ours() -> None:
    sig = TLSSigAPIv2.TLSSigAPIv2(APP, KEY).gen_sig("administrator", 3600)
    doc = usersig.verify(sig, APP, "administrator", KEY)
    assert doc["TLS.identifier"] == "administrator"


def test_alphabet_is_tencents_variant() -> None:
    sigs = [usersig.generate(APP, KEY, f"user{i}", 86400, now=1_700_000_000 + i) for i in range(50)]
    joined = "".join(sigs)
    assert not set("+/=") & set(joined)
    assert set("*-_") & set(joined)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"sdkappid": APP + 1}, 70014),
        ({"identifier": "someone"}, 70013),
        ({"key": "another-key"}, 70009),
        ({"now": 1_700_000_000 + 86401}, 70001),
    ],
    ids=["sdkappid", "identifier", "key", "expired"],
)
def test_verify_refuses_with_server_codes(change: dict[str, object], code: int) -> None:
    sig = usersig.generate(APP, KEY, "administrator", 86400, now=1_700_000_000)
    args: dict[str, object] = {"sdkappid": APP, "identifier": "administrator", "key": KEY, "now": 1_700_000_000}
    args.update(change)
    with pytest.raises(usersig.UserSigError) as caught:
        usersig.verify(sig, **args)  # type: ignore[arg-type]
    assert caught.value.code == code


@pytest.mark.parametrize(("sig", "code"), [("", 70002), ("not-a-sig", 70003), ("eJyrVkrOzy0", 70003)])
def test_unreadable_sigs(sig: str, code: int) -> None:
    with pytest.raises(usersig.UserSigError) as caught:
        usersig.decode(sig)
    assert caught.value.code == code


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_cache_reuses_until_renewal_margin() -> None:
    clock = FakeClock()
    cache = usersig.UserSigCache(expire=7200, margin=600, clock=clock)
    identity = usersig.Identity(APP, "administrator", KEY)
    first = cache.get(identity)
    clock.now += 6599  # still outside the renewal margin
    assert cache.get(identity) == first
    clock.now += 2  # inside the margin: renew
    renewed = cache.get(identity)
    assert renewed != first
    assert usersig.verify(renewed, APP, "administrator", KEY, now=int(clock.now))


def test_cache_signs_afresh_after_invalidate_or_new_key() -> None:
    clock = FakeClock()
    cache = usersig.UserSigCache(clock=clock)
    identity = usersig.Identity(APP, "administrator", KEY)
    first = cache.get(identity)
    clock.now += 1
    cache.invalidate()
    assert cache.get(identity) != first
    rotated = usersig.Identity(APP, "administrator", "rotated-key")
    usersig.verify(cache.get(rotated), APP, "administrator", "rotated-key", now=int(clock.now))


def test_cache_is_thread_safe_one_sig_for_many_threads() -> None:
    cache = usersig.UserSigCache()
    identity = usersig.Identity(APP, "administrator", KEY)
    seen: set[str] = set()
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(200):
            sig = cache.get(identity)
            with lock:
                seen.add(sig)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 1


def test_identity_repr_hides_the_key() -> None:
    assert KEY not in repr(usersig.Identity(APP, "administrator", KEY))
