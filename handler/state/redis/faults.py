"""redis-py's errors as the causes DESIGN names ("The state store, as people rent it"), in words, never a class.

Each becomes ``StoreUnavailable`` (transient: worth another try within the invocation) or ``StoreMisconfigured``
(a configuration fault: waits for a fix). The server's own words decide where redis-py's class does not: an
error raised inside a script comes back as a plain ``ResponseError`` whose text carries the server's code
(``-READONLY You can't write against a read only replica``).

Out of memory is a configuration fault: with ``noeviction`` the server refuses writes until someone gives it
memory or frees some; another try a few hundred ms later meets the same full server, and the ERROR and
metric that a configuration fault raises are what brings the fix. The message is not lost either way (-6,
redelivered).

A TLS handshake that fails or times out after the TCP connection was made is a configuration fault too: a
TLS server answers a handshake at once, so this is ``rediss://`` to a plain port (or a certificate refused).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator

from redis import exceptions as rx

from handler.order.store import StoreMisconfigured, StoreUnavailable

AUTH = "authentication failed (user or password)"
UNAUTHENTICATED = "authentication failed: the server asks for a password and none is given (IM_STATE_STORE_PASSWORD)"
TLS = ("TLS handshake failed: the port does not speak TLS, or its certificate was refused (rediss:// is for a "
       "TLS port, redis:// for a plain one)")
OOM = ("out of memory: the server is at its maxmemory and refuses writes; give it more memory (a larger node) "
       "or free some")
READ_ONLY = "read-only replica (a failover in progress, or the URL names a replica)"
MOVED = ("cluster redirection not followed: the server is a cluster node but was used as a single server "
         "(INFO, which says so, was refused)")
CLUSTER_DB = "no such database: a cluster has only database 0 (end the URL with /0)"
_ACL = ("its ACL needs EVALSHA EVAL SCRIPT|LOAD INFO, on a cluster CLUSTER|SLOTS COMMAND, and inside the "
        "scripts HGET HMGET HSET HDEL TTL EXPIREAT GET SET")
SHOWN = 160  # characters of a server's own message a cause quotes

# (server code or phrase in the message, cause, transient): the server's words, whatever redis-py made of them
_PHRASES: tuple[tuple[str, str, bool], ...] = (
    ("DB index is out of range", "no such database: the URL's /DB is beyond the server's databases", False),
    ("SELECT is not allowed in cluster mode", CLUSTER_DB, False),
    ("OOM ", OOM, False),
    ("READONLY ", READ_ONLY, True),
    ("LOADING ", "loading: the server is loading its data after a restart", True),
    ("BUSY ", "busy: a script on the server runs past its time limit", True),
    ("MASTERDOWN ", "the replica's link to its master is down (a failover in progress)", True),
    ("CLUSTERDOWN ", "the cluster is down or reconfiguring (slots not served)", True),
    ("TRYAGAIN ", "the cluster is moving the key's slot (try again)", True),
    ("max number of clients reached", "the server has as many clients as it takes (maxclients)", True),
)


def fault(store: str, exc: BaseException, *, tls: bool, password: bool) -> StoreUnavailable:
    """The error ``exc`` (redis-py's, raised calling ``store``) as a store fault with its cause in words."""
    cause, transient = _cause(exc, tls=tls, password=password)
    return StoreUnavailable(store, cause) if transient else StoreMisconfigured(store, cause)


def _cause(exc: BaseException, *, tls: bool, password: bool) -> tuple[str, bool]:
    inner = _server_error_behind(exc)
    if inner is not None:  # the cluster client wraps what a node said ("no node reachable": it said NOPERM)
        return _cause(inner, tls=tls, password=password)
    text = _text(exc)
    said = _server_said(exc, text, password)
    if said is not None:
        return said
    if tls and _handshake(exc):
        return TLS, False
    if isinstance(exc, rx.TimeoutError):
        return "timed out", True
    if isinstance(exc, rx.ConnectionError | rx.RedisClusterException | rx.ClusterError):
        return _connection(exc, text), True
    if isinstance(exc, rx.ResponseError):
        return f"the server refused the call: {text[:SHOWN]}", False
    return f"the server's answer could not be used: {text[:SHOWN]}", True


def _server_said(exc: BaseException, text: str, password: bool) -> tuple[str, bool] | None:
    """The cause where the server's own words (or redis-py's class for them) name it."""
    if isinstance(exc, rx.AuthenticationError) or text.startswith(("WRONGPASS", "NOAUTH")):
        return (AUTH if password else UNAUTHENTICATED), False
    if isinstance(exc, rx.NoPermissionError) or "NOPERM" in text or "executing the script can't run" in text:
        return _no_permission(text), False
    if isinstance(exc, rx.AskError) or re.search(r"-?(MOVED|ASK) \d+ ", text):
        return MOVED, False
    return next(((cause, transient) for phrase, cause, transient in _PHRASES if phrase in f"{text} "), None)


def _server_error_behind(exc: BaseException) -> BaseException | None:
    if not isinstance(exc, rx.RedisClusterException):
        return None
    return next((seen for seen in _chain(exc) if isinstance(seen, rx.RedisError)), None)


def _text(exc: BaseException) -> str:
    """The server's message as redis-py keeps it, with the code redis-py took off put back."""
    text = str(exc)
    code = getattr(exc, "status_code", None)
    return f"{code} {text}" if code else text


def _no_permission(text: str) -> str:
    command = re.search(r"run the '([^']+)' command", text)
    if command:
        return f"no permission: the user may not run {command.group(1).upper()} ({_ACL})"
    if "executing the script can't run" in text:  # Redis 6's words for a command inside a script
        return f"no permission: the user may not run a command the scripts use ({_ACL})"
    if "keys" in text:
        return "no permission: the user may not touch the store's keys (its ACL needs ~task#* and ~rate#*)"
    return f"no permission: {text.removeprefix('NOPERM ')[:SHOWN]}"


def _handshake(exc: BaseException) -> bool:
    """The TLS handshake failed: an SSL error (or its time-out) behind redis-py's connection error."""
    return any(isinstance(seen, ssl.SSLError) or "handshake" in str(seen) for seen in _chain(exc))


def _connection(exc: BaseException, text: str) -> str:
    """A connection that could not be made or was lost, in the operating system's words where it gave some."""
    if "Connection refused" in text or any(isinstance(seen, ConnectionRefusedError) for seen in _chain(exc)):
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "host not found (DNS): check the URL's host"
    if isinstance(exc, rx.RedisClusterException):
        return "no node of the cluster could be reached"
    return "connection dropped"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The error and what it was raised from or during (redis-py wraps the socket's and ssl's errors)."""
    seen: BaseException | None = exc
    for _ in range(8):  # a chain is short; a loop in one must not hang the caller
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__
