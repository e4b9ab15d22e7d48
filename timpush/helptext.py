"""What a command's ``--help`` says besides its options: the environment it reads and its exit status.

Every command exits 0 when it did what was asked, 1 when something failed at run time, 2 for a usage,
input or configuration mistake (said in one line on stderr); each command's own lines say what that means.
"""

from __future__ import annotations

import argparse

IDENTITY = """\
  IM_SDKAPPID + IM_SECRET_KEY     one app and its key (local use), or
  IM_SECRET_SOURCE                where the key lives (aws-secretsmanager:, aws-ssm:, tencent-ssm:), or
  IM_APPS                         several apps, a JSON list (docs/secrets.md)
  IM_ENDPOINT or IM_REGION        the IM server: IM_ENDPOINT=http://127.0.0.1:8080 for `timpush emulator`,
                                  else the region's domain (default china)
"""
TUNING = "  IM_ADMIN, IM_RATE_LIMIT, IM_STATE_STORE, IM_MAX_ATTEMPTS, ...   optional, as in the README\n"

FLEET = """\
  send and redrive --to direct apply changes as one of the fleet: they need IM_STATE_STORE (the fleet's
  order) and refuse without it, before sending anything (exit 2), unless --without-store says this
  process's own order is all there is.
"""

TOP = f"""\
environment: each command's --help says what it reads. The handler's commands (invoke, send --to direct,
redrive --to direct, tasks) read the handler's own variables:
{IDENTITY}{TUNING}{FLEET}

exit status (every command): 0 done, 1 something failed at run time, 2 a usage, input or configuration
mistake (one line on stderr names it). send and redrive: 130 when interrupted.
"""

INVOKE = f"""\
environment: the handler's own, as deployed:
{IDENTITY}\
  DEAD_LETTER                     where failures go: default file:dead-letters.jsonl; required with
                                  --platform scf (as on SCF itself)
{TUNING}
exit status:
  0  the handler returned; its result is on stdout (failed modifications are in it, and dead-lettered)
  1  the handler failed at run time, a dead letter that could not be written included (a queue out of
     reach, a full disk, a DEAD_LETTER file in a missing directory): the event was not finished
  2  the event file, the event or the environment is wrong (one line on stderr names it)
"""

USERSIG = """\
environment:
  IM_SECRET_KEY                   the app key (or pipe it on stdin; never an argument)
  IM_SDKAPPID                     unless --sdkappid
  IM_ADMIN                        unless --identifier (default administrator)

exit status: 0 printed; 2 no key or SDKAppID, or a bad argument
"""

DEMO = """\
environment: none of yours: it starts its own emulator on a free loopback port and points the handler at it
with a throwaway key (your IM_* and DEAD_LETTER* are replaced for its run).

exit status: 0 the demo ran to its end; 2 a bad argument (e.g. --dead-letters in a missing directory)
"""

TASKS = f"""\
environment: the handler's identity, server and rate budget:
{IDENTITY}\
  IM_RATE_LIMIT, IM_STATE_STORE   the budget reads take slots of (the fleet's with IM_STATE_STORE)
  IM_MAX_ATTEMPTS                 attempts per call (each call waits {{budget:g}} s at most)

exit status:
  0  every task asked for was read
  1  a call failed: its code and meaning on stderr (-1 connection failed, -2 timed out, or the API's code)
  2  bad arguments or configuration, or no --sdkappid where several apps are configured
"""

BUNDLE = """\
environment:
  pip reaches PyPI (or PIP_INDEX_URL); no Docker.
  A Python 3.12 (3.10 for --platform scf) compiles the .pyc: TIMPUSH_PYTHON312 (TIMPUSH_PYTHON310),
  python3.12 (python3.10) on PATH, or a pyenv one; without it the zip ships sources only (a warning says so).

exit status: 0 built (path and sizes printed); 1 the build failed (pip, compiling, size limit);
2 a bad argument (an --arch the platform does not run, an --out that cannot be written)
"""

EMULATOR = """\
environment:
  IM_SECRET_KEY                   the app key, unless --key

exit status: 0 stopped with Ctrl-C; 1 cannot listen on the address; 2 a bad argument (no key, a bad --fault)
"""


def describe(parser: argparse.ArgumentParser, text: str) -> None:
    """Put ``text`` under the options of ``parser``'s --help, line breaks kept."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = text
