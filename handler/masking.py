"""A value as a message may show it: whatever could be a password hidden, judged from the value's shape.

A mistyped URL is the one most likely to be echoed (a configuration error shows what it got), and a typo
moves the password out of the place a URL parser looks for it: ``redis//:PW@host``, ``redis:/:PW@host``,
``PW@host:6379``, ``redis://host/0?password=PW``, ``redis://:PW`` (the host forgotten). So the rules do not
parse the URL; they hide by shape, erring towards hiding:

- a query parameter named like a secret (``password``, ``pass``, ``pwd``, ``auth``, ``token``, ``secret``,
  ``key``): its value and all that follows;
- anything up to the last ``@`` (a user and password, whatever separates them, ``@`` and ``/`` included),
  keeping only a scheme-like start (``redis://``, ``redis//``, ``rediss:/``) that has a slash in it, and
  what follows the ``@`` only when it looks like a host, port and database;
- after such a start, a leading ``:`` (an empty user, then a password and no host) hides the rest, and a
  ``host:`` followed by anything but a port's digits hides what follows the colon.
"""

from __future__ import annotations

import re

HIDDEN = "***"
_SECRET_PARAMETER = r"(?i)([?&;#](?:password|passwd|pass|pwd|auth|token|secret|key)=).*"  # noqa: S105 (a pattern)
_START = r"^\s*[A-Za-z][A-Za-z0-9+.-]*(?::/*|/+)"  # redis://  redis:/  redis//  redis:  (a scheme and its slashes)
_NOT_A_PORT = r"([^/:?#@]*):(?![0-9]*(?:[/?#]|$))"  # host: then something that is not a port
_PLACE = r"(?:\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9._-]*)(?::[0-9]*)?(?:/[A-Za-z0-9]*)?(?:\?.*)?"  # host, port, db, query


def mask(text: str) -> str:
    """``text`` with every part that could be a password replaced by ``***``."""
    text = re.sub(_SECRET_PARAMETER, rf"\1{HIDDEN}", text)
    start = re.match(_START, text)
    keep = start.group(0) if start and "/" in start.group(0) else ""
    rest = text[len(keep):]
    if "@" in rest:
        place = rest.rsplit("@", 1)[1]  # shown only when it looks like one: a raw "@" in a password moves it
        return f"{keep}{HIDDEN}@{place}" if re.fullmatch(_PLACE, place, re.DOTALL) else f"{keep}{HIDDEN}"
    if not keep:
        return text
    if rest.startswith(":"):
        return f"{keep}:{HIDDEN}"
    host = re.match(_NOT_A_PORT, rest)
    return f"{keep}{host.group(1)}:{HIDDEN}" if host else text
