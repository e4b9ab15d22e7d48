"""4. Memory: peak RSS of a warm process after 1,000 and after 5,000 modifications (rate limits off).

One child process imports the handler and runs one direct invocation per modification against the emulator
(in its own process, so its memory is not counted). Peak RSS is the process's ``VmHWM`` (``/proc/self/status``);
current RSS is read from ``/proc/self/statm``. Growth from 1k to 5k is what a leak would show (the request log,
the dead-letter sinks, metrics that are never flushed, caches keyed by task).
"""

from __future__ import annotations

import os
import resource
import tempfile
from pathlib import Path
from typing import Any

from bench import support

CHECKPOINTS = (1000, 5000)
GOAL_MB = 80.0
GROWTH_MB = 2.0  # what "no growth" tolerates: allocator noise, not a leak (a leak of 1 KB per call is 4 MB)


def _peak_mb() -> float:
    """This process's peak RSS (``VmHWM``). Not ``ru_maxrss``: Linux carries that over ``exec`` from the parent,
    so a child of a large ``python -m bench`` (moto loaded for the cold benchmark) reported the parent's peak."""
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024  # kB
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _current_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(params: dict[str, Any]) -> dict[str, Any]:
    import handler
    from timpush.context import LocalContext

    lambda_handler = handler.lambda_handler
    marks: dict[str, dict[str, float]] = {"imported": {"peak": _peak_mb(), "current": _current_mb()}}
    mods = support.modifications(params["tasks"], max(CHECKPOINTS))
    failed = 0
    for index, mod in enumerate(mods, start=1):
        failed += lambda_handler(mod, LocalContext())["dead_lettered"]
        if index in CHECKPOINTS or index == 1:
            marks[str(index)] = {"peak": _peak_mb(), "current": _current_mb()}
    return {"marks": marks, "failed": failed}


def run() -> tuple[str, dict[str, Any]]:
    with support.emulator(rate_limit=0, tasks=20) as served, tempfile.TemporaryDirectory() as tmp:
        env = support.handler_env(served.url, Path(tmp) / "dead-letters.jsonl", rate_limit=0)
        result = support.run_child("bench.bench_memory", {"tasks": served.tasks}, env)
    return report(result), result


def report(result: dict[str, Any]) -> str:
    marks = result["marks"]
    first, last = (marks[str(n)] for n in CHECKPOINTS)
    growth = last["peak"] - first["peak"]
    rows = [["after import", f"{marks['imported']['peak']:.1f}", f"{marks['imported']['current']:.1f}", ""],
            ["after 1 modification", f"{marks['1']['peak']:.1f}", f"{marks['1']['current']:.1f}", ""]]
    for n in CHECKPOINTS:
        mark = marks[str(n)]
        goal = ""
        if n == CHECKPOINTS[0]:
            goal = f"<= {GOAL_MB:.0f} MB: {'met' if mark['peak'] <= GOAL_MB else 'MISSED'}"
        else:
            goal = f"growth {growth:+.1f} MB (<= {GROWTH_MB:.0f}): {'met' if growth <= GROWTH_MB else 'MISSED'}"
        rows.append([f"after {n:,} modifications", f"{mark['peak']:.1f}", f"{mark['current']:.1f}", goal])
    return support.table("Memory: one warm process, one invocation per modification (rate limits off)",
                         ["point", "peak RSS MB", "current RSS MB", "goal"], rows,
                         note=f"failed modifications: {result['failed']}")


if __name__ == "__main__":
    if support.is_child():
        support.child_main(child)
    else:
        print(run()[0])
