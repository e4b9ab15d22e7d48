"""``timpush emulator``: serve the local IM emulator until Ctrl-C.

The lead's ``timpush`` command calls ``add_arguments`` on its sub-parser and ``run`` with the result.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from timpush.emulator.faults import KINDS, Fault
from timpush.emulator.server import Emulator
from timpush.emulator.settings import (
    CONTENT_MODES,
    DEFAULT_ADMIN,
    DEFAULT_SDKAPPID,
    SAMPLE_FIRST_TASK_ID,
    EmulatorSettings,
)

KEY_VARIABLE = "IM_SECRET_KEY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from timpush import helptext

    helptext.describe(parser, helptext.EMULATOR)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8080, help="port to bind, 0 for any (default 8080)")
    parser.add_argument("--sdkappid", type=int, default=DEFAULT_SDKAPPID, help="the emulated SDKAppID")
    parser.add_argument("--key", help=f"the app key (default: ${KEY_VARIABLE})")
    parser.add_argument("--app", action="append", type=_app, default=[], metavar="SDKAPPID=KEY",
                        help="serve another app besides --sdkappid, with its own key; repeatable")
    parser.add_argument("--admin", action="append", help=f"an App admin, repeatable (default {DEFAULT_ADMIN})")
    parser.add_argument("--seed", type=int, default=0, help="seed of task IDs, MsgRandom and fault dice")
    _add_behaviour(parser)


def _add_behaviour(parser: argparse.ArgumentParser) -> None:
    """How the emulated server behaves: pace, dispatch, Content, the past, sample tasks, faults."""
    parser.add_argument("--rate-limit", type=int, default=5, help="requests/second per API, 0 = off")
    parser.add_argument("--dispatch-seconds", type=float, default=5.0, help="time a task spends dispatching")
    parser.add_argument("--content-mode", choices=CONTENT_MODES, default="merge", help="how modify applies Content")
    parser.add_argument("--allow-past", action="store_true", help="accept a SchedAt that has already passed")
    parser.add_argument("--sample-tasks", action="store_true",
                        help="start with the five tasks the samples in events/ name (1234567890 on; the fourth "
                             "already dispatched), so `timpush invoke events/NAME.json` works against it")
    parser.add_argument("--fault", action="append", type=_fault, default=[],
                        metavar="KIND[:count=N][:probability=P][:api=A][:code=C][:delay=S]",
                        help=f"inject a fault, repeatable; KIND is one of {', '.join(KINDS)}")


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return int(text)


def _app(spec: str) -> tuple[int, str]:
    sdkappid, equals, key = spec.partition("=")
    if not (sdkappid.isascii() and sdkappid.isdigit()) or not equals or not key:
        raise argparse.ArgumentTypeError("expected SDKAPPID=KEY, e.g. 1400000002=other-key")
    return int(sdkappid), key


def _fault(spec: str) -> Fault:
    try:
        return Fault.parse(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve until Ctrl-C (or until ``stop`` is set, for tests); 2 for a bad setting, 1 if it can't bind."""
    key = args.key or os.environ.get(KEY_VARIABLE)
    if not key:
        print(f"timpush emulator: no app key: pass --key or set {KEY_VARIABLE}", file=sys.stderr)
        return 2
    try:
        settings = _settings(args, key)
    except ValueError as exc:
        print(f"timpush emulator: {exc}", file=sys.stderr)
        return 2
    try:
        emulator = Emulator(settings, args.host, args.port, args.fault).start()
    except OSError as exc:
        print(f"timpush emulator: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.sample_tasks:
        from timpush.demo import create_tasks  # the handler's client, only for this option

        create_tasks(emulator, say=lambda text: print(text, file=sys.stderr))
    return _serve(emulator, stop or threading.Event())


def _settings(args: argparse.Namespace, key: str) -> EmulatorSettings:
    return EmulatorSettings(
        sdkappid=args.sdkappid,
        key=key,
        admins=tuple(args.admin or (DEFAULT_ADMIN,)),
        seed=args.seed,
        rate_limit=args.rate_limit,
        dispatch_seconds=args.dispatch_seconds,
        content_mode=args.content_mode,
        refuse_past=not args.allow_past,
        first_task_id=SAMPLE_FIRST_TASK_ID if args.sample_tasks else None,
        other_apps=tuple(args.app),
    )


def _serve(emulator: Emulator, stop: threading.Event) -> int:
    settings = emulator.settings
    admins = ", ".join(settings.admins)
    apps = ", ".join(str(sdkappid) for sdkappid in (settings.sdkappid, *dict(settings.other_apps)))
    print(
        f"timpush emulator: serving {emulator.url} for sdkappid {apps} (admins: {admins}); Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(0.5):  # a timed wait keeps Ctrl-C responsive
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0
