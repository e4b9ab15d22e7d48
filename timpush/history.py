"""``timpush history TASKID``: who moved my push? The task's history from the fleet's state store (DESIGN "Task
history"): one entry per modification that reached a final outcome, oldest first, as a table or ``--json``.

Exit status: 0 the history was read (an empty one says so), 1 the store could not be read (its cause named),
2 a usage or configuration mistake (``IM_STATE_STORE`` unset: the history lives in the store).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from handler.config import ConfigError, Settings, load
from handler.order.history import CAP, newest
from handler.order.key import TaskKey
from handler.order.store import StoreUnavailable, TaskStore
from timpush.outcomes import print_table
from timpush.tasks import positive_int

COLUMNS = ("outcome", "when (UTC)", "source", "change", "issued (UTC)", "fields", "superseded by", "code")
NO_STORE = ("needs IM_STATE_STORE (dynamodb:TABLE or redis://HOST:PORT): the history is kept in the fleet's "
            "state store, beside each task's order")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task_id", metavar="TASKID", type=positive_int, help="the task")
    parser.add_argument("--sdkappid", type=positive_int, help="the task's app (default IM_SDKAPPID)")
    parser.add_argument("--limit", type=positive_int, default=CAP,
                        help=f"the newest N entries (default and most kept: {CAP})")
    parser.add_argument("--json", action="store_true",
                        help='one JSON document: {"sdkappid", "task_id", "entries": [...]}, oldest first')


def run(args: argparse.Namespace) -> int:
    from handler.state.homes import open_store

    try:
        found = _settings()
    except ConfigError as exc:
        return _usage(f"configuration error: {exc}")
    if not found.state_store:
        return _usage(NO_STORE)
    sdkappid = args.sdkappid or found.sdkappid
    if sdkappid is None:
        return _usage("name the task's app: --sdkappid N (or set IM_SDKAPPID)")
    return show(open_store(found.state_store), TaskKey(sdkappid, args.task_id), args.limit, args.json)


def _settings() -> Settings:
    """The store and the app, parsed and checked as the handler does; reading a history needs no app key, so
    the key's variables are left out and a stand-in satisfies the rule that one of them be set."""
    wanted = ("IM_STATE_STORE", "IM_STATE_STORE_PASSWORD", "IM_SDKAPPID")
    return load({**{name: os.environ[name] for name in wanted if name in os.environ}, "IM_SECRET_KEY": "-"})


def show(store: TaskStore, task: TaskKey, limit: int = CAP, as_json: bool = False) -> int:
    """Print the task's history from ``store`` (the command's path, and the demo's); the exit status."""
    try:
        entries = newest(store.history(task), limit)
    except StoreUnavailable as exc:
        print(f"timpush history: the state store cannot be read: {exc.store}: {exc.cause}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps({"sdkappid": task.sdkappid, "task_id": task.task_id, "entries": entries},
                         ensure_ascii=False))
    elif entries:
        print_table(f"history of task {task.task_id} (app {task.sdkappid}), oldest first", COLUMNS,
                    [row(entry) for entry in entries])
    if not entries:
        print(f"no history for task {task.task_id} of app {task.sdkappid} in {store.name}: nothing applied, "
              "superseded or dead-lettered there yet, or past its retention", file=sys.stderr if as_json else None)
    return 0


def row(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """One entry as the table shows it."""
    return (str(entry.get("outcome", "")), _time(entry.get("at")), str(entry.get("source", "")),
            str(entry.get("change", "")), _time(entry.get("issued_at")), fields_text(entry.get("fields")),
            _pairs(entry.get("superseded_by")), str(entry.get("error_code", "")))


def fields_text(fields: object) -> str:
    """``SchedAt 2031-06-15 14:00:00; Content 1a2b3c4d5e6f7a8b "New title"``."""
    if not isinstance(fields, Mapping):
        return ""
    parts = []
    if "SchedAt" in fields:
        parts.append(f"SchedAt {fields['SchedAt']}")
    content = fields.get("Content")
    if isinstance(content, Mapping):
        title = f" {json.dumps(content['title'], ensure_ascii=False)}" if "title" in content else ""
        parts.append(f"Content {content.get('digest', '')}{title}")
    return "; ".join(parts)


def _pairs(value: object) -> str:
    return ", ".join(f"{name}: {by}" for name, by in value.items()) if isinstance(value, Mapping) else ""


def _time(value: object) -> str:
    """``2030-06-15T14:00:00.123Z`` as ``2030-06-15 14:00:00`` (the milliseconds are in ``--json``)."""
    return str(value or "").replace("T", " ")[:19]


def _usage(problem: str) -> int:
    print(f"timpush history: {problem}", file=sys.stderr)
    return 2
