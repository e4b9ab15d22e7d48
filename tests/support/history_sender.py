"""One process of tests/integration/test_history.py's fleet: apply COUNT changes of one task through the direct
trigger (``handler.lambda_handler``, the environment names the store and the emulator), each its own invocation,
and print the changes' ids (``direct:REQUEST_ID``) as one JSON list."""

from __future__ import annotations

import contextlib
import io
import json
import sys

import handler
from timpush.context import LocalContext


def main(task: int, count: int) -> None:
    changes = []
    for index in range(count):
        context = LocalContext()
        sched_at = f"2031-05-{index + 1:02d} 10:00:00"
        with contextlib.redirect_stdout(io.StringIO()):  # EMF metric lines
            handler.lambda_handler({"TaskID": task, "Type": "All", "SchedAt": sched_at}, context)
        changes.append(f"direct:{context.aws_request_id}")
    print(json.dumps(changes))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
