"""The URL checks of the common REST layer: which app, is the query well-formed, who is signing.

Split in two around the rate limiter: the limiter needs the SDKAppID, and a request is counted
whether or not its signature is good (the limiter stands in front of authentication).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from handler.im import usersig
from timpush.emulator import envelope as env
from timpush.emulator.settings import EmulatorSettings

_DIGITS = re.compile(r"[0-9]+")
_MAX_RANDOM = 2**32 - 1


def app_of(query: Mapping[str, str], settings: EmulatorSettings) -> int:
    """The SDKAppID of a well-formed query for an app this emulator serves."""
    raw = query.get("sdkappid")
    if not raw:
        raise env.ApiError(env.SDKAPPID_MISSING, "sdkappid is missing from the URL")
    if not _DIGITS.fullmatch(raw):
        raise env.ApiError(env.INVALID_URL, "sdkappid must be an integer")
    if query.get("contenttype") != "json":
        raise env.ApiError(env.INVALID_URL, "contenttype must be json")
    _check_random(query.get("random"))
    sdkappid = int(raw)
    if settings.key_for(sdkappid) is None:
        raise env.ApiError(env.APP_NOT_FOUND, "sdkappid not found")
    return sdkappid


def _check_random(raw: str | None) -> None:
    if raw is None or not _DIGITS.fullmatch(raw) or int(raw) > _MAX_RANDOM:
        raise env.ApiError(env.INVALID_URL, "random must be an integer within 0..4294967295")


def identity_of(query: Mapping[str, str], sdkappid: int, key: str, admins: Collection[str], now: int) -> str:
    """The admin identifier whose UserSig signs the query (verified at emulated time ``now``)."""
    identifier = query.get("identifier")
    if not identifier:
        raise env.ApiError(env.BAD_ACCOUNT, "identifier is missing from the URL")
    try:
        usersig.verify(query.get("usersig", ""), sdkappid, identifier, key, now=now)
    except usersig.UserSigError as exc:
        raise env.ApiError(exc.code, str(exc)) from exc
    if identifier not in admins:
        raise env.ApiError(env.NOT_ADMIN, "identifier is not an App admin")
    return identifier
