"""TLSSigAPIv2 UserSig: generation, server-side verification, and a reusable admin signature.

Follows Tencent's reference implementation (tls-sig-api-v2): HMAC-SHA256 over four fixed lines,
a JSON document, zlib, then standard base64 with Tencent's own substitutions ``+ / =`` -> ``* - _``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
import zlib
from collections.abc import Callable
from typing import NamedTuple

DEFAULT_EXPIRE = 180 * 86400  # the SDK's default validity, 180 days
RENEWAL_MARGIN = 3600  # renew an hour before expiry so no request goes out with a sig about to lapse

_TO_TENCENT = str.maketrans("+/=", "*-_")
_FROM_TENCENT = str.maketrans("*-_", "+/=")


def _content_to_sign(identifier: str, sdkappid: int, curr_time: int, expire: int) -> bytes:
    text = (
        f"TLS.identifier:{identifier}\n"
        f"TLS.sdkappid:{sdkappid}\n"
        f"TLS.time:{curr_time}\n"
        f"TLS.expire:{expire}\n"
    )
    return text.encode("utf-8")


def _hmac_b64(key: str, content: bytes) -> str:
    digest = hmac.new(key.encode("utf-8"), content, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def generate(
    sdkappid: int, key: str, identifier: str, expire: int = DEFAULT_EXPIRE, now: int | None = None
) -> str:
    """A UserSig for ``identifier``, valid ``expire`` seconds from ``now``."""
    curr_time = int(time.time()) if now is None else now
    doc = {
        "TLS.ver": "2.0",
        "TLS.identifier": identifier,
        "TLS.sdkappid": int(sdkappid),
        "TLS.expire": int(expire),
        "TLS.time": curr_time,
        "TLS.sig": _hmac_b64(key, _content_to_sign(identifier, sdkappid, curr_time, expire)),
    }
    packed = zlib.compress(json.dumps(doc, separators=(",", ":")).encode("utf-8"))
    return base64.b64encode(packed).decode("ascii").translate(_TO_TENCENT)


class UserSigError(Exception):
    """A UserSig the server would refuse; ``code`` is the IM error code it would answer with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def decode(sig: str) -> dict[str, object]:
    """The JSON document inside a UserSig (70002 empty, 70003 unreadable)."""
    if not sig:
        raise UserSigError(70002, "usersig is empty")
    try:
        raw = zlib.decompress(base64.b64decode(sig.translate(_FROM_TENCENT), validate=True))
        doc = json.loads(raw)
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise UserSigError(70003, "usersig could not be decoded") from exc
    if not isinstance(doc, dict):
        raise UserSigError(70003, "usersig is not a JSON object")
    return doc


def verify(sig: str, sdkappid: int, identifier: str, key: str, now: int | None = None) -> dict[str, object]:
    """Check a UserSig the way the IM server does (order as in Tencent's VerifyUserSig)."""
    doc = decode(sig)
    try:
        sig_appid = int(doc["TLS.sdkappid"])  # type: ignore[call-overload]
        sig_time = int(doc["TLS.time"])  # type: ignore[call-overload]
        sig_expire = int(doc["TLS.expire"])  # type: ignore[call-overload]
        sig_id = str(doc["TLS.identifier"])
        sig_hmac = str(doc["TLS.sig"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserSigError(70003, "usersig lacks a required field") from exc
    if sig_appid != sdkappid:
        raise UserSigError(70014, "sdkappid does not match the usersig")
    if sig_id != identifier:
        raise UserSigError(70013, "identifier does not match the usersig")
    if (int(time.time()) if now is None else now) > sig_time + sig_expire:
        raise UserSigError(70001, "usersig expired")
    expected = _hmac_b64(key, _content_to_sign(sig_id, sig_appid, sig_time, sig_expire))
    if not hmac.compare_digest(expected, sig_hmac):
        raise UserSigError(70009, "usersig signature does not match the key")
    return doc


class Identity(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    """Who signs the requests: the app, its admin account and the key (never logged)."""

    sdkappid: int
    admin: str
    key: str

    def __repr__(self) -> str:  # keep the key out of tracebacks and debug logs
        return f"Identity(sdkappid={self.sdkappid}, admin={self.admin!r}, key=<redacted>)"


class UserSigCache:
    """One admin UserSig, reused until RENEWAL_MARGIN before it lapses; safe across threads."""

    def __init__(
        self,
        expire: int = DEFAULT_EXPIRE,
        margin: int = RENEWAL_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._expire = expire
        self._margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._identity: Identity | None = None
        self._sig = ""
        self._renew_at = 0.0
        self._expires_at = 0

    @property
    def expires_at(self) -> int:
        """When the cached sig lapses (Unix time), 0 before the first; safe to log, unlike the sig."""
        return self._expires_at

    def get(self, identity: Identity) -> str:
        """The cached sig for ``identity``, made anew when absent, near expiry, or for another key."""
        with self._lock:
            now = self._clock()
            if identity != self._identity or now >= self._renew_at:
                self._sign(identity, int(now))
            return self._sig

    def invalidate(self) -> None:
        """Forget the sig so the next ``get`` signs afresh (after a 70001/70052 answer)."""
        with self._lock:
            self._identity = None

    def _sign(self, identity: Identity, now: int) -> None:
        self._sig = generate(identity.sdkappid, identity.key, identity.admin, self._expire, now)
        self._identity = identity
        self._renew_at = now + self._expire - self._margin
        self._expires_at = now + self._expire
