"""The IM emulator in a process of its own, with tasks to modify: ``python -m bench.serve``.

Prints one JSON line ``{"url": ..., "tasks": [...]}`` on stdout once it serves, then runs until its
standard input closes (the benchmark that started it exits or closes the pipe).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from bench.support import ADMIN, APP, FUTURE, KEY_VARIABLE
from handler.im import client
from handler.im.usersig import generate
from timpush.emulator import Emulator, EmulatorSettings


def add_tasks(url: str, key: str, count: int, rate_limit: int) -> list[int]:
    """Create ``count`` ``All`` tasks through add_sched_task, paced under the emulator's own limit."""
    creds = client.Credentials(APP, ADMIN, generate(APP, key, ADMIN))
    ids = []
    for index in range(count):
        if rate_limit and index and index % rate_limit == 0:
            time.sleep(1.05)
        body = {"Sdkappid": APP, "Type": "All", "SchedAt": FUTURE,
                "Content": {"From_Account": ADMIN, "OfflinePushInfo": {"Title": f"task {index}", "Desc": "d"}}}
        result = client.call(url, "add_sched_task", body, creds)
        if not result.ok or result.body is None:
            raise SystemExit(f"bench.serve: add_sched_task failed: {result}")
        ids.append(int(result.body["TaskID"]))
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("--rate-limit", type=int, default=0)
    parser.add_argument("--tasks", type=int, default=20)
    args = parser.parse_args()
    key = os.environ[KEY_VARIABLE]
    settings = EmulatorSettings(sdkappid=APP, key=key, admins=(ADMIN,), rate_limit=args.rate_limit,
                                log_limit=20_000)
    with Emulator(settings) as emu:
        tasks = add_tasks(emu.url, key, args.tasks, args.rate_limit)
        if args.rate_limit:
            time.sleep(1.05)  # the add window must not bleed into the first measured second
        print(json.dumps({"url": emu.url, "tasks": tasks}), flush=True)
        sys.stdin.read()  # until the parent closes the pipe
    return 0


if __name__ == "__main__":
    sys.exit(main())
