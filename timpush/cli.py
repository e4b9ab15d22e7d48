"""The ``timpush`` command: local tooling around the handler (not deployed)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any


def _invoke(args: argparse.Namespace) -> int:
    from handler.config import ConfigError

    text = sys.stdin.read() if args.event == "-" else _read(args.event)
    try:
        event = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # Lambda hands the function strict JSON; so does invoke
        print(f"timpush invoke: {args.event} is not JSON: {exc}", file=sys.stderr)
        return 2
    entry, context = _entry(args.platform, args.timeout)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # EMF metrics print to stdout; keep it for the result
            result = entry(event, context)
    except ConfigError as exc:
        print(f"timpush invoke: configuration error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _entry(platform: str, timeout: float) -> tuple[Callable[[Any, Any], Any], Any]:
    """The platform's entry point and a stand-in for the context it is given."""
    from timpush.context import LocalContext, scf_context

    if platform == "scf":
        os.environ.setdefault("TENCENTCLOUD_RUNENV", "SCF")  # it stands in for SCF: counts as log fields
        from handler import main_handler

        return main_handler, scf_context(timeout)
    from handler import lambda_handler

    return lambda_handler, LocalContext(timeout_seconds=timeout)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON (Lambda payloads are strict JSON)")


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _usersig(args: argparse.Namespace) -> int:
    from handler.im.usersig import generate

    key = os.environ.get("IM_SECRET_KEY") or ("" if sys.stdin.isatty() else sys.stdin.readline().strip())
    sdkappid = args.sdkappid or os.environ.get("IM_SDKAPPID")
    if not key or not sdkappid:
        print("timpush usersig: set IM_SECRET_KEY (or pipe the key on stdin) and IM_SDKAPPID (or --sdkappid)",
              file=sys.stderr)
        return 2
    identifier = args.identifier or os.environ.get("IM_ADMIN") or "administrator"
    print(generate(int(sdkappid), key, identifier, args.expire))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from timpush.demo import run

    return run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="timpush", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    invoke = sub.add_parser("invoke", help="run handler.lambda_handler (or handler.main_handler with --platform "
                                           "scf) on an event file (or - for stdin)")
    invoke.add_argument("event")
    invoke.add_argument("--platform", choices=("lambda", "scf"), default="lambda",
                        help="lambda (default) or scf: Tencent SCF's main_handler with an SCF context dict")
    invoke.add_argument("--timeout", type=float, default=60.0, help="the stand-in context's timeout, seconds")
    invoke.set_defaults(func=_invoke)

    usersig = sub.add_parser("usersig", help="print an admin UserSig (key from IM_SECRET_KEY or stdin)")
    usersig.add_argument("--sdkappid", type=int)
    usersig.add_argument("--identifier", help="default IM_ADMIN or administrator")
    usersig.add_argument("--expire", type=int, default=86400, help="validity in seconds (default one day)")
    usersig.set_defaults(func=_usersig)

    demo = sub.add_parser("demo", help="run the whole flow locally: emulator, handler, dead letters")
    demo.add_argument("--dead-letters", default="demo-dead-letters.jsonl", help="file the demo dead-letters to")
    demo.add_argument("--verbose", action="store_true", help="also show the handler's JSON log lines (stderr)")
    demo.set_defaults(func=_demo)

    for name, (module_name, text) in _PLUGINS.items():
        plugin = sub.add_parser(name, help=text)
        module = importlib.import_module(module_name)
        module.add_arguments(plugin)
        plugin.set_defaults(func=module.run)
    return parser


# Commands whose arguments live with their module: each has ``add_arguments(parser)`` and ``run(args)``.
_PLUGINS: dict[str, tuple[str, str]] = {
    "emulator": ("timpush.emulator.cli", "serve the local IM emulator"),
    "bundle": ("timpush.bundle", "build the Lambda artifact (cp312 wheels, precompiled .pyc, deterministic zip)"),
    "redrive": ("timpush.redrive",
                "move dead letters (file:PATH or sqs:URL) back to the work queue or apply them now (direct)"),
    "send": ("timpush.send",
             "load modifications from CSV or JSON Lines onto the work queue (sqs:URL) or apply them now (direct)"),
    "tasks": ("timpush.tasks", "read scheduled push tasks back: get TASKID... or list [--limit N]"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args: Any = _parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
