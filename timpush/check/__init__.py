"""``timpush check``: every check a cold start makes, against the current environment, one line each.

From a laptop or a CI job, before a deployment or after a change of settings (DESIGN "The state store, as
people rent it"): the configuration, the secret source (fetched, never printed), each app's UserSig
(generated and verified locally), the state store (what it stands on, one lease taken and released on a
throw-away task) and each dead-letter sink (reachable; nothing written). A line says what it found and,
when the check fails, the fix. Nothing secret is printed: values are masked by shape, keys never shown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from timpush.check.lines import Line

HELP = """\
environment: the handler's own, as deployed (run it with the function's settings):
  IM_SDKAPPID + IM_SECRET_KEY, IM_SECRET_SOURCE or IM_APPS; IM_REGION / IM_ENDPOINT
  IM_STATE_STORE (+ IM_STATE_STORE_PASSWORD), DEAD_LETTER, DEAD_LETTER_ROUTES, WORK_QUEUE
  AWS credentials for aws-* secrets, DynamoDB and SQS; Tencent credentials for tencent-ssm and tdmq-cmq

what it changes: nothing but one lease on a throw-away task key in the state store (taken and released at
once; the key expires within a day). No dead letter is written, no message read, no IM request sent.

exit status:
  0  every check passed
  1  a check failed: its line says what it found and the fix
  2  a bad argument
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Run every cold-start check against the current environment, one line each."
    parser.epilog = HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def run(_args: argparse.Namespace) -> int:
    """Exit status: see HELP."""
    from timpush.check.steps import every_check

    return report(every_check())


def report(lines: Iterable[Line]) -> int:
    """Print each line as it comes (a slow store shows where it waits); 0 when all passed, else 1."""
    failed = 0
    for line in lines:
        print(line.text(), flush=True)
        failed += not line.ok
    print(f"timpush check: {'every check passed' if not failed else f'{failed} check(s) failed'}",
          file=sys.stderr)
    return 1 if failed else 0
