"""The ``timpush`` command: local tooling around the handler (not deployed)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any


def _invoke(args: argparse.Namespace) -> int:
    """Exit status: 0 the handler returned (its result on stdout), 1 it failed at run time (a dead letter that
    could not be written included), 2 a mistake in the event, its file or the environment (one line on stderr)."""
    event = _event(args.event)
    if event is _UNREADABLE:
        return 2
    entry, context = _entry(args.platform, args.timeout)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # EMF metrics print to stdout; keep it for the result
            result = entry(event, context)
    except _invoke_errors() as exc:
        return _invoke_failed(args.event, exc)
    print(json.dumps(result, ensure_ascii=False))
    return 0


_UNREADABLE = object()


def _event(path: str) -> Any:
    """The event of the file (or stdin), or _UNREADABLE after one line saying why."""
    from handler.model import TooDeep, loads

    try:
        text = sys.stdin.read() if path == "-" else _read(path)
        return loads(text)
    except OSError as exc:
        problem = exc.strerror or str(exc)
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 (byte {exc.start})"
    except TooDeep as exc:  # the handler's own bound (handler.model.jsontext), as on every trigger
        problem = f"is not JSON this handler takes: {exc}"
    except ValueError as exc:  # Lambda hands the function strict JSON (no NaN); so does invoke
        problem = f"is not JSON: {exc}"
    print(f"timpush invoke: {path}: {problem}", file=sys.stderr)
    return _UNREADABLE


def _invoke_errors() -> tuple[type[Exception], ...]:
    from handler.config import ConfigError
    from handler.deadletter.record import DeadLetterError
    from handler.sources import MalformedEvent

    return ConfigError, MalformedEvent, DeadLetterError


def _invoke_failed(path: str, exc: Exception) -> int:
    from handler.config import ConfigError
    from handler.deadletter.record import DeadLetterError

    if isinstance(exc, ConfigError):
        print(f"timpush invoke: configuration error: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, DeadLetterError):  # the handler raised so the platform keeps the event; here: say why
        print(f"timpush invoke: a dead letter could not be written: {exc}", file=sys.stderr)
        return 1  # a run-time failure (DESIGN "Command line"), whichever sink: a queue, a full disk, a lost path
    print(f"timpush invoke: {path}: {exc}", file=sys.stderr)
    return 2


def _entry(platform: str, timeout: float) -> tuple[Callable[[Any, Any], Any], Any]:
    """The platform's entry point and a stand-in for the context it is given."""
    from timpush.context import LocalContext, scf_context

    if platform == "scf":
        os.environ.setdefault("TENCENTCLOUD_RUNENV", "SCF")  # it stands in for SCF: counts as log fields
        from handler import main_handler

        return main_handler, scf_context(timeout)
    from handler import lambda_handler

    return lambda_handler, LocalContext(timeout_seconds=timeout)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _usersig(args: argparse.Namespace) -> int:
    from handler.im.usersig import generate

    key = os.environ.get("IM_SECRET_KEY") or ("" if sys.stdin.isatty() else sys.stdin.readline().strip())
    sdkappid = args.sdkappid or _env_sdkappid()
    problems = [] if key else ["no key: set IM_SECRET_KEY (or pipe the key on stdin)"]
    if not sdkappid:
        given = os.environ.get("IM_SDKAPPID")
        problems.append(f"IM_SDKAPPID={given!r} is not a positive integer (or use --sdkappid)" if given
                        else "no SDKAppID: set IM_SDKAPPID (or use --sdkappid)")
    if problems or not sdkappid:
        print(f"timpush usersig: {'; '.join(problems)}", file=sys.stderr)
        return 2
    identifier = args.identifier or os.environ.get("IM_ADMIN") or "administrator"
    print(generate(sdkappid, key, identifier, args.expire))
    return 0


def _env_sdkappid() -> int | None:
    text = os.environ.get("IM_SDKAPPID", "")
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:  # NaN too
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _demo(args: argparse.Namespace) -> int:
    from timpush.demo import run

    folder = os.path.dirname(os.path.abspath(args.dead_letters))
    if not os.path.isdir(folder) or os.path.isdir(args.dead_letters):
        print(f"timpush demo: --dead-letters {args.dead_letters}: "
              f"{'a directory' if os.path.isdir(args.dead_letters) else 'no directory ' + folder}; "
              "name a file in an existing directory", file=sys.stderr)
        return 2
    return run(args)


def _parser() -> argparse.ArgumentParser:
    from timpush import helptext

    parser = argparse.ArgumentParser(prog="timpush", description=__doc__)
    helptext.describe(parser, helptext.TOP)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_invoke, _add_usersig, _add_demo):
        add(sub)
    for name, (module_name, text) in _PLUGINS.items():
        plugin = sub.add_parser(name, help=text, description=text)
        module = importlib.import_module(module_name)
        module.add_arguments(plugin)
        plugin.set_defaults(func=module.run)
    return parser


def _add_invoke(sub: Any) -> None:
    from timpush import helptext

    invoke = sub.add_parser("invoke", help="run handler.lambda_handler (or handler.main_handler with --platform "
                                           "scf) on an event file (or - for stdin)")
    invoke.add_argument("event")
    invoke.add_argument("--platform", choices=("lambda", "scf"), default="lambda",
                        help="lambda (default) or scf: Tencent SCF's main_handler with an SCF context dict")
    invoke.add_argument("--timeout", type=_seconds, default=60.0,
                        help="the stand-in context's timeout, seconds above 0 (default 60)")
    invoke.set_defaults(func=_invoke)
    helptext.describe(invoke, helptext.INVOKE)


def _add_usersig(sub: Any) -> None:
    from timpush import helptext
    from timpush.tasks import positive_int

    usersig = sub.add_parser("usersig", help="print an admin UserSig (key from IM_SECRET_KEY or stdin)")
    usersig.add_argument("--sdkappid", type=positive_int, help="default IM_SDKAPPID")
    usersig.add_argument("--identifier", help="default IM_ADMIN or administrator")
    usersig.add_argument("--expire", type=positive_int, default=86400,
                         help="validity in seconds, above 0 (default 86400, one day)")
    usersig.set_defaults(func=_usersig)
    helptext.describe(usersig, helptext.USERSIG)


def _add_demo(sub: Any) -> None:
    from timpush import helptext

    demo = sub.add_parser("demo", help="run the whole flow locally: emulator, handler, dead letters")
    demo.add_argument("--dead-letters", default="demo-dead-letters.jsonl", help="file the demo dead-letters to")
    demo.add_argument("--verbose", action="store_true", help="also show the handler's JSON log lines (stderr)")
    demo.set_defaults(func=_demo)
    helptext.describe(demo, helptext.DEMO)


def _log_level_problem() -> str | None:
    """The log level powertools will read (POWERTOOLS_LOG_LEVEL, else LOG_LEVEL), when it names no level."""
    import logging

    name = "POWERTOOLS_LOG_LEVEL" if os.environ.get("POWERTOOLS_LOG_LEVEL") else "LOG_LEVEL"
    value = os.environ.get(name, "")
    if not value or isinstance(logging.getLevelName(value.upper()), int):
        return None
    return f"{name}={value!r}: not a log level (DEBUG, INFO, WARNING, ERROR or CRITICAL)"


# Commands whose arguments live with their module: each has ``add_arguments(parser)`` and ``run(args)``.
_PLUGINS: dict[str, tuple[str, str]] = {
    "emulator": ("timpush.emulator.cli", "serve the local IM emulator"),
    "bundle": ("timpush.bundle", "build the Lambda artifact, or the SCF one with --platform scf (wheels, "
                                 "precompiled .pyc, deterministic zip)"),
    "redrive": ("timpush.redrive",
                "move dead letters (file:PATH, sqs:URL or SCF's tdmq-cmq:REGION/QUEUE) back to the work queue or "
                "apply them now (direct)"),
    "send": ("timpush.send",
             "load modifications from CSV or JSON Lines onto the work queue (sqs:URL) or apply them now (direct)"),
    "tasks": ("timpush.tasks", "read scheduled push tasks back: get TASKID... or list [--limit N]"),
    "check": ("timpush.check", "run every cold-start check against the current environment, one line each"),
    "history": ("timpush.history", "a task's history from the state store: who moved my push, from where, and "
                                   "what happened to the others"),
}


def main(argv: Sequence[str] | None = None) -> int:
    problem = _log_level_problem()
    if problem:  # the handler's logger would refuse it with a traceback when the first command imports it
        print(f"timpush: {problem}", file=sys.stderr)
        return 2
    args: Any = _parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
