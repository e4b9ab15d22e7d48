"""A naive IM client, written the way common IM clients and snippets do it: the baseline.

A new UserSig for every call (Tencent's own ``TLSSigAPIv2``), ``requests.post`` without a session (a new
TCP connection each time), no pacing, no retry: the first answer is the result.
"""

from __future__ import annotations

import random
from typing import Any

import requests
import TLSSigAPIv2


def modify(base: str, sdkappid: int, key: str, admin: str, modification: dict[str, Any]) -> int:
    """Send one modification; the IM ErrorCode it got (-1 for anything that is not the envelope)."""
    sig = TLSSigAPIv2.TLSSigAPIv2(sdkappid, key).gen_sig(admin)
    url = (f"{base}/v4/timpush/modify_sched_task?sdkappid={sdkappid}&identifier={admin}&usersig={sig}"
           f"&random={random.randint(0, 4294967295)}&contenttype=json")  # noqa: S311
    try:
        answer = requests.post(url, json={"Sdkappid": sdkappid, **modification}, timeout=10).json()
    except (requests.RequestException, ValueError):
        return -1
    return int(answer.get("ErrorCode", -1))
