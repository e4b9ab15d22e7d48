"""3. Pacing: 50 modifications at the default limit (IM_RATE_LIMIT=5) against an emulator that enforces 5/s.

What "ideal" means: the API admits 5 requests in any sliding one-second window. 50 requests are 10 bursts
of 5; a client that knew the server's window exactly would send its bursts at 0, 1, ..., 9 s, so its last
request leaves at **9.0 s** (the *window-exact* ideal) and the 50 requests use **10 s** of quota (the
*nominal* ideal, 50 / 5 per second). The handler's limiter stretches each window by a 30 ms margin
(``JITTER_MARGIN``) against arrival jitter, so its last burst leaves at 9 x 1.03 = 9.27 s.

- **handler**: 50 direct invocations in a row in one warm process (a warm-up invocation that sends nothing
  comes first); elapsed from the first invocation to the last answer; rate-limit answers counted from the
  emulator's request log (the handler would retry them, so its own results would hide them).
- **naive**: ``bench.naive`` sending the same 50 one after another with no pacing; its 60007 answers are final.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench import support

COUNT = 50
RATE = 5
WINDOW_EXACT = (COUNT // RATE - 1) * 1.0  # 9.0 s: the last burst of a window-exact client
NOMINAL = COUNT / RATE  # 10 s
GOAL = 0.05
RATE_LIMITED = 60007


def _handler(params: dict[str, Any]) -> dict[str, Any]:
    import handler
    from timpush.context import LocalContext

    mods = support.modifications(params["tasks"], COUNT)
    handler.lambda_handler({"TaskID": "warm-up"}, LocalContext())  # refused locally: imports and runtime, no send
    started = time.perf_counter()
    results = [handler.lambda_handler(mod, LocalContext()) for mod in mods]
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "succeeded": sum(r["succeeded"] for r in results)}


def _naive(params: dict[str, Any]) -> dict[str, Any]:
    from bench import naive

    mods = support.modifications(params["tasks"], COUNT)
    started = time.perf_counter()
    codes = [naive.modify(params["url"], support.APP, support.KEY, support.ADMIN, mod) for mod in mods]
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "succeeded": codes.count(0)}


def child(params: dict[str, Any]) -> dict[str, Any]:
    return _handler(params) if params["which"] == "handler" else _naive(params)


def run() -> tuple[str, dict[str, Any]]:
    result: dict[str, Any] = {}
    with support.emulator(rate_limit=RATE, tasks=10) as served, tempfile.TemporaryDirectory() as tmp:
        env = support.handler_env(served.url, Path(tmp) / "dead-letters.jsonl", rate_limit=RATE)
        for which in ("handler", "naive"):
            support.emulator_requests(served.url, "DELETE")
            outcome = support.run_child("bench.bench_pacing", {"which": which, "url": served.url,
                                                               "tasks": served.tasks}, env)
            log = support.emulator_requests(served.url)
            arrivals = [entry["t"] for entry in log]
            outcome["sent"] = len(log)
            outcome["rate_limited"] = sum(entry["code"] == RATE_LIMITED for entry in log)
            outcome["span"] = max(arrivals) - min(arrivals) if arrivals else 0.0
            result[which] = outcome
            time.sleep(1.1)  # the next client starts with an empty window
    return report(result), result


def report(result: dict[str, Any]) -> str:
    rows = []
    for name in ("handler", "naive"):
        r = result[name]
        versus = r["elapsed"] / WINDOW_EXACT - 1
        goal = ""
        if name == "handler":
            met = abs(versus) <= GOAL and r["rate_limited"] == 0 and r["succeeded"] == COUNT
            goal = f"within 5% of 9.0 s, no 60007: {'met' if met else 'MISSED'}"
        paced = name == "handler"  # the naive client's time says nothing about pacing: it does none
        rows.append([name, f"{r['elapsed']:.2f}", f"{r['span']:.2f}", f"{versus:+.1%}" if paced else "-",
                     f"{r['elapsed'] / NOMINAL - 1:+.1%}" if paced else "-", r["sent"], r["rate_limited"],
                     r["succeeded"], goal])
    return support.table(
        f"Pacing: {COUNT} modifications at {RATE}/s against an emulator enforcing {RATE}/s",
        ["client", "elapsed s", "first-to-last arrival s", "vs 9.0 s window-exact", "vs 10 s nominal",
         "requests sent", "60007 answers", "succeeded", "goal"], rows,
        note="window-exact: bursts of 5 at 0, 1, ..., 9 s; nominal: 50 requests / 5 per s. "
             "The naive client sends no retry, so each 60007 is a modification not applied.")


if __name__ == "__main__":
    if support.is_child():
        support.child_main(child)
    else:
        print(run()[0])
