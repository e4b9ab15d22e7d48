"""How ``timpush send`` and ``timpush redrive`` run: fail fast, count a batch in flight, keep logs quiet.

- An SQS error that cannot get better (no such queue, no credentials, no region, access denied) stops
  the run at once (``Stop``); a transient one (a dropped connection, throttling) is retried briefly and
  then stops the run too, rather than failing every following batch the same way.
- Ctrl-C while a batch is in flight lets that batch finish, so it is counted by what SQS (or the IM
  server) answered; a second Ctrl-C stops at once.
- The handler logs one JSON line per modification; a person at a terminal sees one line per failure
  instead, and the JSON lines only with ``--verbose``.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from handler.deadletter.sqs import Outgoing, Queue, QueueError
    from handler.runtime import Runtime

DIRECT_BUDGET = 30.0  # seconds one row or record may take through the modifier (retries included)
SEND_ATTEMPTS = 3  # tries per batch, the first included
RETRY_PAUSE = 0.5  # seconds before the second try (doubles each time)

# SQS error codes and botocore errors that no retry will cure: the run stops at the first
PERMANENT = {  # in words; send, redrive and timpush check read it
    "AWS.SimpleQueueService.NonExistentQueue": "no such queue",
    "QueueDoesNotExist": "no such queue",
    "AccessDenied": "access denied", "AccessDeniedException": "access denied",
    "KMS.AccessDeniedException": "access denied to the queue's KMS key",
    "InvalidClientTokenId": "the AWS credentials are not valid", "UnrecognizedClientException":
        "the AWS credentials are not valid", "SignatureDoesNotMatch": "the AWS secret key does not match",
    "ExpiredToken": "the AWS session token has expired", "ExpiredTokenException": "the AWS session token has expired",
    "InvalidAddress": "not a queue URL", "InvalidSecurity": "the queue needs HTTPS",
    "NoCredentialsError": "no AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
    "PartialCredentialsError": "incomplete AWS credentials",
    "NoRegionError": "no AWS region (AWS_REGION, or a queue URL https://sqs.REGION.amazonaws.com/...)",
    "InvalidRegionError": "not a valid AWS region",
}


class Usage(Exception):
    """A bad argument or configuration: exit status 2 with the message."""


class Stop(Exception):
    """The run cannot go on: the message says why, once."""


WITHOUT_STORE = "--without-store"
WITHOUT_STORE_HELP = ("--to direct without IM_STATE_STORE: this process's own order is all there is (the demo, a "
                      "deployment that keeps no store); without it, --to direct refuses when IM_STATE_STORE is unset")


def handler_runtime(what: str, without_store: bool = False) -> Runtime:
    """The handler's runtime from the environment, or Usage naming what needed it and the variable.

    The operators' tools are part of the fleet (DESIGN "Order"): applying changes needs the fleet's order in
    IM_STATE_STORE, or ``without_store`` saying plainly that there is none, so a laptop never undoes what the
    fleet applied. Checked before anything is sent.
    """
    from handler.config import ConfigError
    from handler.runtime import runtime

    try:
        built = runtime()
    except ConfigError as exc:
        raise Usage(f"{what} needs the handler's environment: {exc}") from exc
    if built.settings.state_store is None and not without_store:
        raise Usage(f"{what} needs IM_STATE_STORE, the fleet's order (a change applied there must not be undone "
                    f"from here): set it to the fleet's store, or pass {WITHOUT_STORE} when this process's own "
                    "order is all there is; nothing sent")
    return built


def store_flag_problem(target: str, without_store: bool) -> str | None:
    """--without-store is about --to direct only: a queue's consumers keep the fleet's order themselves."""
    if without_store and target != "direct":
        return f"{WITHOUT_STORE} goes with --to direct only (the work queue's consumers keep the fleet's order)"
    return None


# --- SQS: fail fast, retry briefly ---------------------------------------------------------------


def send_batch(queue: Queue, messages: Sequence[Outgoing]) -> tuple[set[int], str]:
    """Send one batch; retry refused entries and failed calls briefly.

    Returns the indices SQS still refused and why; raises ``Stop`` when the call itself keeps failing
    or fails in a way no retry will cure.
    """
    from handler.deadletter.sqs import QueueError

    pending = list(range(len(messages)))
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            refused = queue.send([messages[i] for i in pending])
        except QueueError as exc:
            if is_permanent(exc) or attempt == SEND_ATTEMPTS:
                raise Stop(explain(queue.name, exc)) from exc
        else:
            pending = [pending[i] for i in sorted(refused)]
            if not pending or attempt == SEND_ATTEMPTS:
                break
        time.sleep(RETRY_PAUSE * 2 ** (attempt - 1))
    return set(pending), f"refused by SQS ({SEND_ATTEMPTS} attempts)"


def _cause_name(exc: BaseException) -> str:
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return type(cause).__name__ if cause is not None else ""


def is_permanent(exc: QueueError) -> bool:
    return _cause_name(exc) in PERMANENT


def explain(name: str, exc: QueueError) -> str:
    cause = _cause_name(exc)
    return f"{name}: {PERMANENT[cause]} ({cause})" if cause in PERMANENT else str(exc)


# --- Ctrl-C: the batch in flight finishes ----------------------------------------------------------


@contextlib.contextmanager
def in_flight(what: str) -> Iterator[None]:
    """Defer a first Ctrl-C until the block ends (then raise KeyboardInterrupt); a second one raises now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked: list[bool] = []

    def interrupted(_signum: int, _frame: FrameType | None) -> None:
        if asked:
            print(f"timpush: stopping now; the {what} in flight may or may not have arrived (counted as not sent)",
                  file=sys.stderr)
            raise KeyboardInterrupt
        asked.append(True)
        print(f"timpush: interrupted; finishing the {what} in flight (Ctrl-C again to stop now)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if asked:
        raise KeyboardInterrupt


# --- the handler's log lines ---------------------------------------------------------------------


class _CurrentStderr:
    """Whatever ``sys.stderr`` is now: rich swaps it while a progress bar is up, to print above the bar."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextlib.contextmanager
def handler_logs(verbose: bool) -> Iterator[None]:
    """The handler's JSON log lines only with ``verbose``, and then above the progress bar."""
    from handler.observability import logger

    level = logger.log_level
    handler: Any = logger.registered_handler
    stream = handler.stream if isinstance(handler, logging.StreamHandler) else None
    logger.setLevel("INFO" if verbose else "CRITICAL")
    if stream is not None:
        handler.setStream(_CurrentStderr())
    try:
        yield
    finally:
        logger.setLevel(level)
        if stream is not None:
            handler.setStream(stream)


def guarded(command: str, work: Callable[[], None]) -> tuple[int, str | None]:
    """Run ``work``: (0, None), or (130, why) on Ctrl-C, or (1, why) when the run had to stop."""
    from handler.deadletter.record import DeadLetterError

    try:
        work()
    except KeyboardInterrupt:
        return 130, f"timpush {command}: interrupted"
    except (Stop, DeadLetterError) as exc:
        return 1, f"timpush {command}: stopped: {exc}"
    return 0, None


def is_queue_url(text: str) -> bool:
    """An http(s) URL with a host and a path (the queue): what SQS's QueueUrl looks like, endpoints included."""
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.path.strip("/") != ""


def not_a_queue(option: str, spec: str) -> Usage:
    return Usage(f"{option} {spec}: not a queue URL (sqs:https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE)")
