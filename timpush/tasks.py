"""``timpush tasks``: read scheduled push tasks back through ``get_sched_task`` / ``list_sched_task``.

With the handler's own identity (configuration and secret source), domain, pacing and error classes, through
the modifier's own retry loop (``handler.im.retry``): retryable answers are tried again, an auth answer gets one
fresh UserSig and a re-fetched secret, and every failure is shown with the API's code and what it means.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from handler.apps import App, Registry, UnknownApp, registry_for
from handler.compat import UTC
from handler.config import ConfigError, Settings
from handler.im import client, codes, retry
from handler.im.codes import meaning
from handler.im.ratelimit import Pacer
from handler.im.usersig import Identity
from handler.secrets import SecretUnavailable
from handler.state.homes import open_pacing
from timpush.outcomes import print_table

GET, LIST = "get_sched_task", "list_sched_task"
PAGE = 50  # Want per list_sched_task call
DEFAULT_LIMIT = 20
# One call (one id, one page) waits at most CALL_BUDGET, every attempt, back-off and pacing included: the one retry
# loop (handler.im.retry) gives each attempt only what is left of it, and a server that never answers ends the
# call with its own code (-2 timed out, -1 connection failed), never with the pacer's 60007.
READ_WAIT = 5.0  # seconds an attempt waits for the answer; the API answers a read in well under one
CALL_BUDGET = 15.0
API_TIME = "%Y-%m-%d %H:%M:%S"
COLUMNS = ("task", "type", "state", "SchedAt (UTC)", "SchedAt (local)", "title")

Read = Callable[[str, client.Credentials, float, float], client.ImResult]  # base, credentials, time left, read wait
UNREACHABLE = frozenset({codes.CONNECTION_FAILED, codes.TIMED_OUT})  # the server cannot be reached: stop reading


class TaskError(Exception):
    """A call that failed for good: the API's code (or the project's negative one) and its info."""

    def __init__(self, code: int, info: str) -> None:
        super().__init__(f"error {code} ({meaning(code)}): {info}" if info else f"error {code} ({meaning(code)})")
        self.code = code
        self.info = info


class UsageError(Exception):
    """The command cannot be run as given (no app chosen where several are configured): exit 2."""


class Reader:
    """Paced, signed, retried reads for one app (``sdkappid``, required when several are configured)."""

    def __init__(self, settings: Settings, sdkappid: int | None = None, apps: Registry | None = None) -> None:
        self._apps = apps or registry_for(settings)
        self._sdkappid = sdkappid
        # the budget modifications have (the fleet's with IM_STATE_STORE), for each API as the server counts
        self._pacing = {api: open_pacing(settings.state_store, settings.rate_limit, settings.rate_fallback, api)
                        for api in (GET, LIST)}
        self._by_app: dict[tuple[str, int], Pacer] = {}
        self._retry = retry.Retry(settings.max_attempts)

    def get(self, task_id: int) -> dict[str, Any]:
        body = self._call(GET, lambda base, creds, left, wait: client.get_sched_task(base, creds, task_id, left, wait))
        info = body.get("TaskInfo")
        if not isinstance(info, dict):
            raise TaskError(codes.NOT_ENVELOPE, "the answer has no TaskInfo")
        return info

    def page(self, offset: int, want: int) -> tuple[int, list[dict[str, Any]]]:
        body = self._call(LIST, lambda base, creds, left, wait: client.list_sched_task(
            base, creds, offset, want, left=left, read=wait))
        tasks, total = body.get("Tasks"), body.get("Total")
        if not isinstance(tasks, list) or not isinstance(total, int):
            raise TaskError(codes.NOT_ENVELOPE, "the answer has no Total and Tasks")
        return total, [task for task in tasks if isinstance(task, dict)]

    def check(self) -> None:
        """Fail before any call when the app to read cannot be chosen (UsageError) or its secret not read."""
        self._app()

    def _call(self, api: str, read: Read) -> dict[str, Any]:
        started = time.monotonic()
        app, identity = self._app()
        call = retry.Call(app, identity, self._pacers(api, identity.sdkappid))
        result = self._retry.run(call, lambda base, creds, left: read(base, creds, left, READ_WAIT),
                                 started + CALL_BUDGET)
        if result.ok:
            return result.body or {}
        raise _given_up(result, call.attempts, started)

    def _pacers(self, api: str, app: int) -> Pacer:
        key = (api, app)
        if key not in self._by_app:
            self._by_app[key] = self._pacing[api](app)
        return self._by_app[key]

    def _app(self) -> tuple[App, Identity]:
        """The app to read (its domain, UserSig cache) and who signs."""
        try:
            return self._apps.resolve(self._sdkappid)
        except UnknownApp as exc:
            raise UsageError(f"--sdkappid: {exc}") from exc
        except SecretUnavailable as exc:
            raise TaskError(exc.code, str(exc)) from exc


def _given_up(result: client.ImResult, attempts: int, started: float) -> TaskError:
    """The call's error as the server (or the network) gave it, with how long it was tried."""
    if attempts <= 1:
        return TaskError(result.code, result.info)
    took = time.monotonic() - started
    return TaskError(result.code, f"{result.info} (gave up after {attempts} attempts in {took:.0f} s)")


# --- the command -----------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from timpush import helptext

    text = helptext.TASKS.format(budget=CALL_BUDGET)
    helptext.describe(parser, text)
    sub = parser.add_subparsers(dest="tasks_command", required=True, metavar="{get,list}")
    get = sub.add_parser("get", help="show tasks by TaskID (get_sched_task)")
    get.add_argument("task_ids", nargs="+", type=positive_int, metavar="TASKID")
    listing = sub.add_parser("list", help="show the newest tasks (list_sched_task, paged)")
    listing.add_argument("--limit", type=positive_int, default=DEFAULT_LIMIT, metavar="N",
                         help=f"show at most N tasks (default {DEFAULT_LIMIT})")
    for each in (get, listing):
        helptext.describe(each, text)
        each.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
        each.add_argument("--sdkappid", type=positive_int, metavar="N",
                          help="the app to read; required when several are configured (IM_APPS)")


def positive_int(text: str) -> int:
    """An argument that must be a positive whole number (a TaskID, a count, an SDKAppID, seconds)."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 done, 1 a call failed (named with its code), 2 bad arguments or configuration."""
    from handler.config import settings

    try:
        reader = Reader(settings(), args.sdkappid)
        reader.check()
        if args.tasks_command == "get":
            return _get(reader, args.task_ids, args.json)
        return _list(reader, args.limit, args.json)
    except ConfigError as exc:
        print(f"timpush tasks: configuration error: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"timpush tasks: {exc}", file=sys.stderr)
        return 2
    except TaskError as exc:  # the app's secret could not be read
        print(f"timpush tasks: {exc}", file=sys.stderr)
        return 1


def _get(reader: Reader, task_ids: Sequence[int], as_json: bool) -> int:
    found: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    not_read: list[int] = []
    for done, task_id in enumerate(task_ids, start=1):
        try:
            found.append(reader.get(task_id))
        except TaskError as exc:
            print(f"timpush tasks: {task_id}: {exc}", file=sys.stderr)
            errors.append({"TaskID": task_id, "ErrorCode": exc.code, "ErrorInfo": exc.info,
                           "meaning": meaning(exc.code)})
            if exc.code in UNREACHABLE and done < len(task_ids):  # the next ones would wait as long, in vain
                not_read = list(task_ids[done:])
                why = "does not answer" if exc.code == codes.TIMED_OUT else "cannot be reached"
                print(f"timpush tasks: stopped: the server {why}; not read: {' '.join(map(str, not_read))}",
                      file=sys.stderr)
                break
    if as_json:
        print(json.dumps({"tasks": found, "errors": errors, "not_read": not_read}, ensure_ascii=False))
    elif found:
        print_table("timpush tasks", COLUMNS, [_row(task) for task in found])
    return 1 if errors else 0


def _list(reader: Reader, limit: int, as_json: bool) -> int:
    found: list[dict[str, Any]] = []
    total = 0
    try:
        while len(found) < limit:
            total, page = reader.page(len(found), min(PAGE, limit - len(found)))
            found += page
            if not page or len(found) >= total:
                break
    except TaskError as exc:
        print(f"timpush tasks: list: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps({"Total": total, "tasks": found}, ensure_ascii=False))
        return 0
    if found:
        print_table("timpush tasks", COLUMNS, [_row(task) for task in found])
    print(f"{len(found)} of {total} task(s), newest first")
    return 0


def _row(task: dict[str, Any]) -> tuple[str, ...]:
    sched_at = str(task.get("SchedAt", ""))
    return (str(task.get("TaskID", "")), str(task.get("Type", "")), str(task.get("Status", "")), sched_at,
            _local(sched_at), str(task.get("Title", "")))


def _local(api_time: str) -> str:
    """The API's UTC time in this machine's zone, with its offset (the table's second SchedAt)."""
    try:
        when = datetime.strptime(api_time, API_TIME).replace(tzinfo=UTC)
    except ValueError:
        return ""
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
