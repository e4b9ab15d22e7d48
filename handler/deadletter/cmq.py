"""TDMQ for CMQ's HTTP data-flow API: SendMessage, ReceiveMessage and DeleteMessage on one queue.

This is the production path for messages (tencentcloud 1111/46396, 1111/46415): the cloud API's
``SendCmqMsg`` is rate-limited to 20 calls/s per root account and "for testing and verification"
(1111/63331). The tencentcloud SDK does not speak this API, so it is signed here as Tencent's own
data-flow SDK signs it (tencentyun/cmq-python-sdk ``cmq/sign.py``): a form-encoded ``POST /v2/index.php``
whose parameters include ``Action``, ``SecretId``, ``Timestamp``, ``Nonce``, ``SignatureMethod``, ``Token``
(a session token, when there is one) and ``Signature`` = base64(HMAC(SecretKey, ``POST`` + host + path + ``?``
+ the other parameters sorted by name as ``k=v`` joined by ``&``, values not URL-encoded)). Answers are JSON
``{"code", "message", "requestId", ...}``; ``code`` 0 is success.

Addresses are per region: private ``http://gz.mqadapter.cmq.tencentyun.com`` (inside the VPC, the default
on SCF) and public ``https://cmq-gz.public.tencenttdmq.com`` otherwise; the console's "API request address"
may differ, so ``TENCENTCLOUD_TDMQ_ENDPOINT`` (``http(s)://HOST[:PORT]``) overrides both.

Throttled answers (module code 10250, "qps throttling", 406/19325), HTTP 429 and 5xx, and dropped connections
are retried with backoff until the caller's deadline; everything else is a ``CmqError`` at once. An error's
text names the action, the queue and Tencent's code and message, never a body or a credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from handler.config import ConfigError
from handler.im.client import scrub
from handler.im.client import timeouts as bounded  # connect and read capped by the time left

PATH = "/v2/index.php"
ENDPOINT_VAR = "TENCENTCLOUD_TDMQ_ENDPOINT"
ID_VAR, KEY_VAR, TOKEN_VAR = "TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN"
SIGNATURE_METHOD = "HmacSHA256"
REQUEST_CLIENT = "timpush-modifier"
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10.0  # above the longest receive wait used here
NO_MESSAGE = 7000  # ReceiveMessage on an empty queue: code 7000, "(10200)no message"
THROTTLED_MODULE = 10250  # "(10250)qps throttling": the queue's QPS limit was reached
BACKOFF_BASE = 0.2  # seconds; full jitter over base * 2**n, capped
BACKOFF_CAP = 2.0
# Tencent region -> the short name in CMQ addresses (1111/46415 shows gz; the others as CMQ's region list).
SHORT_REGION = {
    "ap-guangzhou": "gz", "ap-shanghai": "sh", "ap-beijing": "bj", "ap-chengdu": "cd", "ap-chongqing": "cq",
    "ap-nanjing": "nj", "ap-hongkong": "hk", "ap-singapore": "sg", "ap-seoul": "kr", "ap-tokyo": "jp",
    "ap-bangkok": "th", "ap-mumbai": "in", "ap-jakarta": "jkt", "na-siliconvalley": "usw",
    "na-ashburn": "use", "eu-frankfurt": "de", "sa-saopaulo": "sao", "ap-shanghai-fsi": "shjr",
    "ap-shenzhen-fsi": "szjr", "ap-beijing-fsi": "bjjr",
}
_MODULE = re.compile(r"^\((\d+)\)")
SESSION = requests.Session()
T = TypeVar("T")


class CmqError(Exception):
    """A data-flow call failed: ``code`` is Tencent's (or -1 for the network, the HTTP status otherwise);
    ``cause`` says why in words (connection refused, no answer, ...), for a job that stops on it."""

    def __init__(self, text: str, code: int, module: int | None = None, cause: str = "") -> None:
        super().__init__(text)
        self.code = code
        self.module = module
        self.cause = cause or text

    @property
    def retryable(self) -> bool:
        return self.module == THROTTLED_MODULE or self.code in (-1, 429) or 500 <= self.code < 600


@dataclass(frozen=True)
class Received:
    """One received message; ``receipt`` deletes it until its visibility timeout runs out."""

    msg_id: str
    body: str
    receipt: str
    dequeue_count: int


def signature(secret_key: str, host: str, params: Mapping[str, object], method: str = "POST",
              path: str = PATH) -> str:
    """The data-flow signature (``cmq/sign.py``): HMAC over method, host, path and the sorted parameters."""
    text = method + host + path + "?" + "&".join(f"{k.replace('_', '.')}={params[k]}" for k in sorted(params))
    digest = hashlib.sha256 if params.get("SignatureMethod") == "HmacSHA256" else hashlib.sha1
    return base64.b64encode(hmac.new(secret_key.encode(), text.encode(), digest).digest()).decode()


def endpoint(region: str, environ: Mapping[str, str]) -> str:
    """The queue's address: the override, else private inside SCF and public elsewhere."""
    given = environ.get(ENDPOINT_VAR)
    if given:
        url = urlsplit(given if "://" in given else f"http://{given}")
        if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/") or url.query:
            raise ConfigError(f"{ENDPOINT_VAR}: expected http(s)://HOST[:PORT], got {given[:80]!r}")
        return f"{url.scheme}://{url.netloc}"
    short = SHORT_REGION.get(region)
    if short is None:
        raise ConfigError(f"tdmq-cmq:{region}/...: no CMQ address known for region {region}; set {ENDPOINT_VAR}")
    if environ.get("TENCENTCLOUD_RUNENV") == "SCF":
        return f"http://{short}.mqadapter.cmq.tencentyun.com"
    return f"https://cmq-{short}.public.tencenttdmq.com"


def credentials(environ: Mapping[str, str]) -> tuple[str, str, str]:
    """(SecretId, SecretKey, Token): SCF's role credentials, else the SDK's standard chain (laptop, CVM)."""
    secret_id, secret_key = environ.get(ID_VAR, ""), environ.get(KEY_VAR, "")
    if secret_id and secret_key:
        return secret_id, secret_key, environ.get(TOKEN_VAR, "")
    if secret_id or secret_key:
        raise ConfigError(f"{ID_VAR} and {KEY_VAR}: set both or neither")
    from tencentcloud.common import credential  # only off SCF, where no role credentials are injected

    try:
        found = credential.DefaultCredentialProvider().get_credential().get_credential_info()
    except Exception as exc:  # noqa: BLE001 - the SDK raises its own and plain exceptions alike
        raise ConfigError(f"{ID_VAR} / {KEY_VAR}: not set and no other Tencent credentials found") from exc
    return found[0], found[1], found[2] or ""


class CmqQueue:
    """One queue of the data-flow API, with the credentials read once."""

    def __init__(self, region: str, queue: str, environ: Mapping[str, str]) -> None:
        self.name = queue
        self.base = endpoint(region, environ)
        self._host = urlsplit(self.base).netloc
        self._id, self._key, self._token = credentials(environ)

    def send(self, body: str, deadline: float) -> str:
        """Send one message; the msgId. Throttled or transient failures are retried until ``deadline``."""
        answer = retrying(lambda: self.call("SendMessage", {"msgBody": body}), deadline)
        return str(answer.get("msgId", ""))

    def receive(self, wait_seconds: int, deadline: float, patient: bool = True) -> Received | None:
        """The next visible message (hidden for the queue's visibility timeout), or None when there is none.

        ``patient``: a dropped or refused connection is tried again until ``deadline``; otherwise it ends the call.
        """
        try:
            answer = retrying(lambda: self.call("ReceiveMessage", {"pollingWaitSeconds": wait_seconds},
                                                READ_TIMEOUT + wait_seconds, deadline), deadline, patient)
        except CmqError as exc:
            if exc.code == NO_MESSAGE:
                return None
            raise
        return Received(str(answer.get("msgId", "")), str(answer.get("msgBody", "")),
                        str(answer.get("receiptHandle", "")), _int(answer.get("dequeueCount")))

    def delete(self, receipt: str, deadline: float, patient: bool = True) -> None:
        retrying(lambda: self.call("DeleteMessage", {"receiptHandle": receipt}, deadline=deadline), deadline, patient)

    def call(self, action: str, params: Mapping[str, object], read_timeout: float = READ_TIMEOUT,
             deadline: float | None = None) -> dict[str, Any]:
        """One signed request, ended by ``deadline`` when given; the answer when ``code`` is 0, else CmqError."""
        signed = self._signed(action, params)
        where = f"{action} on {self.name}"
        timeout: Any = (CONNECT_TIMEOUT, read_timeout) if deadline is None else bounded(
            deadline - time.monotonic(), read_timeout)
        try:
            response = SESSION.post(self.base + PATH, data=signed, timeout=timeout)
        except requests.RequestException as exc:
            raise CmqError(f"{where}: {type(exc).__name__}: {scrub(str(exc), self._key)}", -1,
                           cause=_cause(exc)) from None
        return _answer(response, where)

    def _signed(self, action: str, params: Mapping[str, object]) -> dict[str, object]:
        signed: dict[str, object] = {
            "Action": action, "queueName": self.name, **params, "RequestClient": REQUEST_CLIENT,
            "SecretId": self._id, "Timestamp": int(time.time()), "Nonce": random.randint(1, 2**31 - 1),  # noqa: S311
            "SignatureMethod": SIGNATURE_METHOD,
        }
        if self._token:
            signed["Token"] = self._token
        signed["Signature"] = signature(self._key, self._host, signed)
        return signed


def _cause(exc: requests.RequestException) -> str:
    """Why a request got no answer, in words."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "no answer (read timed out)"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or dropped"
    return "request failed"


def _answer(response: requests.Response, where: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise CmqError(f"{where}: HTTP {response.status_code}", response.status_code)
    try:
        doc = response.json()
        code = int(doc["code"])
    except (ValueError, KeyError, TypeError):
        raise CmqError(f"{where}: the answer is not the data-flow JSON envelope", 502) from None
    if code != 0:
        message = str(doc.get("message", ""))[:200]
        module = _MODULE.match(message)
        raise CmqError(f"{where}: code {code} {message} (requestId {doc.get('requestId')})", code,
                       int(module[1]) if module else None)
    return dict(doc)


def retrying(call: Callable[[], T], deadline: float, patient: bool = True) -> T:
    """``call()``, again after a jittered pause while it fails retryably and the pause ends before ``deadline``;
    a connection that failed (-1) is tried again only when ``patient``."""
    attempt = 0
    while True:
        try:
            return call()
        except CmqError as exc:
            attempt += 1
            pause = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))  # noqa: S311 (jitter)
            again = exc.retryable and (patient or exc.code != -1)
            if not again or time.monotonic() + pause >= deadline:
                raise
            time.sleep(pause)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
