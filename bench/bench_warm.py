"""1. Warm overhead: N modifications through ``lambda_handler`` vs the floor, in one warm process.

- **handler**: one direct invocation per modification (``{"TaskID": ..., ...}``), rate limit off; the
  handler logs a JSON line and flushes its EMF metrics on every invocation, as on Lambda.
- **floor**: the same N requests by a bare keep-alive ``requests.Session``: URLs (with a prebuilt UserSig)
  and bodies built before the clock starts; the answer's ErrorCode is read, nothing else.
- **naive**: ``bench.naive`` (a new UserSig and a new connection per call).

Rounds of N are interleaved (the order rotates every round) so that noise on the shared machine falls on
every candidate alike; the figure is the median over rounds of (round time / N).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import support

N = 300
ROUNDS = 7
WARMUP = 30
GOAL = 1.15


def _handler(url: str, mods: list[dict[str, Any]]) -> Callable[[], int]:
    import handler
    from timpush.context import LocalContext

    lambda_handler = handler.lambda_handler

    def run() -> int:
        failed = 0
        for mod in mods:
            failed += lambda_handler(mod, LocalContext())["dead_lettered"]
        return failed

    return run


def _floor(url: str, mods: list[dict[str, Any]]) -> Callable[[], int]:
    import requests

    from handler.im.usersig import generate

    session = requests.Session()
    sig = generate(support.APP, support.KEY, support.ADMIN)
    base = (f"{url}/v4/timpush/modify_sched_task?sdkappid={support.APP}&identifier={support.ADMIN}"
            f"&usersig={sig}&contenttype=json&random=")
    urls = [f"{base}{index}" for index in range(len(mods))]
    bodies = [json.dumps({"Sdkappid": support.APP, **mod}).encode() for mod in mods]
    headers = {"Content-Type": "application/json"}
    pairs = list(zip(urls, bodies, strict=True))

    def run() -> int:
        failed = 0
        for target, body in pairs:
            failed += session.post(target, data=body, headers=headers, timeout=(3.05, 10)).json()["ErrorCode"] != 0
        return failed

    return run


def _naive(url: str, mods: list[dict[str, Any]]) -> Callable[[], int]:
    from bench import naive

    def run() -> int:
        return sum(naive.modify(url, support.APP, support.KEY, support.ADMIN, mod) != 0 for mod in mods)

    return run


CANDIDATES = {"handler": _handler, "floor": _floor, "naive": _naive}


def child(params: dict[str, Any]) -> dict[str, Any]:
    n, rounds = params["n"], params["rounds"]
    mods = support.modifications(params["tasks"], n)
    runners = {name: make(params["url"], mods) for name, make in CANDIDATES.items() if name in params["which"]}
    for name, run in runners.items():  # connections, lazy imports, the runtime: out of the measurement
        make = CANDIDATES[name]
        make(params["url"], mods[:WARMUP])()
        del run
    times: dict[str, list[float]] = {name: [] for name in runners}
    failures = dict.fromkeys(runners, 0)
    names = list(runners)
    for index in range(rounds):
        for name in names[index % len(names):] + names[: index % len(names)]:
            started = time.perf_counter()
            failures[name] += runners[name]()
            times[name].append((time.perf_counter() - started) / n)
    return {"times": times, "failures": failures}


def run(n: int = N, rounds: int = ROUNDS) -> tuple[str, dict[str, Any]]:
    with support.emulator(rate_limit=0, tasks=20) as served, tempfile.TemporaryDirectory() as tmp:
        env = support.handler_env(served.url, Path(tmp) / "dead-letters.jsonl", rate_limit=0)
        params = {"url": served.url, "tasks": served.tasks, "n": n, "rounds": rounds, "which": list(CANDIDATES)}
        result = support.run_child("bench.bench_warm", params, env)
    return report(result, n, rounds), result


def report(result: dict[str, Any], n: int, rounds: int) -> str:
    times, failures = result["times"], result["failures"]
    floor = support.median(times["floor"])
    rows = []
    for name in ("floor", "handler", "naive"):
        median = support.median(times[name])
        goal = f"<= {GOAL}: {'met' if median / floor <= GOAL else 'MISSED'}" if name == "handler" else ""
        rows.append([name, support.ms(median), support.ms(min(times[name])), f"{median / floor:.3f}",
                     failures[name], goal])
    return support.table(
        f"Warm overhead: {n} modifications x {rounds} interleaved rounds (rate limits off)",
        ["candidate", "median ms/mod", "best ms/mod", "ratio vs floor", "failed", "goal"], rows)


if __name__ == "__main__":
    if support.is_child():
        support.child_main(child)
    else:
        print(run()[0])
