"""1. Warm overhead: N modifications through ``lambda_handler`` vs the floor, in one warm process.

- **floor**: the same N requests by a bare keep-alive ``requests.Session``: URLs (with a prebuilt UserSig)
  and bodies built before the clock starts; the answer's ErrorCode is read, nothing else.
- **handler**: one direct invocation per modification (``{"TaskID": ..., ...}``), rate limit off. Every
  invocation validates, signs, sends, writes its JSON log line and flushes its EMF metrics, as on Lambda.
- **handler, SQS batches of 10**: the same modifications as SQS events of 10 records (the worker's shape).
- **naive**: ``bench.naive`` (a new UserSig and a new connection per call).

Rounds of N are interleaved (the order rotates every round) so that noise on the shared machine falls on
every candidate alike; the figure is the median over rounds of (round time / N). A second, smaller run puts
2 ms of server latency on every modify (an emulator ``slow`` fault), nearer to what a real API answers in.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import support

N = 300
ROUNDS = 7
LATENCY = 0.002
LATENCY_N = 100
LATENCY_ROUNDS = 5
WARMUP = 30
GOAL = 1.15
BATCH = 10
FAR = time.monotonic() + 365 * 86400  # a deadline no part of the breakdown reaches


def _handler(url: str, mods: list[dict[str, Any]]) -> Callable[[], int]:
    import handler
    from timpush.context import LocalContext

    lambda_handler = handler.lambda_handler

    def run() -> int:
        return sum(lambda_handler(mod, LocalContext())["dead_lettered"] for mod in mods)

    return run


# Each message sent now and later than the one before, every round: a SentTimestamp not newer than the last change
# applied to its task (by an earlier round, or by the direct candidate, stamped with the time of receipt) would make
# the task order (DESIGN "Order") take it for a stale redelivery and send nothing.
_LAST_SENT = [0]


def _sent_now() -> str:
    _LAST_SENT[0] = max(_LAST_SENT[0] + 1, time.time_ns() // 1_000_000)
    return str(_LAST_SENT[0])


def _sqs_record(index: int, mod: dict[str, Any]) -> dict[str, Any]:
    return {"messageId": f"bench-{index}", "receiptHandle": f"rh-{index}", "body": json.dumps(mod),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": _sent_now(),
                           "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1780300800100"},
            "messageAttributes": {}, "md5OfBody": "-", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:timpush-bench-work", "awsRegion": "us-east-1"}


def _sqs(url: str, mods: list[dict[str, Any]]) -> Callable[[], int]:
    import handler
    from timpush.context import LocalContext

    lambda_handler = handler.lambda_handler
    events = [{"Records": [_sqs_record(start + i, mod) for i, mod in enumerate(mods[start:start + BATCH])]}
              for start in range(0, len(mods), BATCH)]

    def run() -> int:
        failed = 0
        for event in events:
            for record in event["Records"]:  # a fresh send time (~0.1 us a record, against ~500 us of work)
                record["attributes"]["SentTimestamp"] = _sent_now()
            failed += len(lambda_handler(event, LocalContext())["batchItemFailures"])
        return failed

    return run


def _floor(url: str, mods: list[dict[str, Any]]) -> Callable[[], int]:
    import requests

    from handler.im.usersig import generate

    session = requests.Session()
    sig = generate(support.APP, support.KEY, support.ADMIN)
    base = (f"{url}/v4/timpush/modify_sched_task?sdkappid={support.APP}&identifier={support.ADMIN}"
            f"&usersig={sig}&contenttype=json&random=")
    pairs = [(f"{base}{index}", json.dumps({"Sdkappid": support.APP, **mod}).encode())
             for index, mod in enumerate(mods)]
    headers = {"Content-Type": "application/json"}

    def run() -> int:
        return sum(session.post(target, data=body, headers=headers, timeout=(3.05, 10)).json()["ErrorCode"] != 0
                   for target, body in pairs)

    return run


def _naive(url: str, mods: list[dict[str, Any]]) -> Callable[[], int]:
    from bench import naive

    def run() -> int:
        return sum(naive.modify(url, support.APP, support.KEY, support.ADMIN, mod) != 0 for mod in mods)

    return run


CANDIDATES = {"floor": _floor, "handler": _handler, "handler, SQS batches of 10": _sqs, "naive": _naive}


def child(params: dict[str, Any]) -> dict[str, Any]:
    n, rounds, url = params["n"], params["rounds"], params["url"]
    mods = support.modifications(params["tasks"], n)
    names = params["which"]
    for name in names:  # connections, lazy imports, the runtime: all out of the measurement
        CANDIDATES[name](url, mods[:WARMUP])()
    runners = {name: CANDIDATES[name](url, mods) for name in names}
    times, failures = support.interleave(runners, rounds, n)
    answer: dict[str, Any] = {"times": times, "failures": failures, "n": n, "rounds": rounds}
    if params.get("breakdown"):
        answer["breakdown"] = breakdown(mods)
    return answer


def breakdown(mods: list[dict[str, Any]], repeat: int = 5) -> dict[str, float]:
    """Where one invocation's own time goes, with the network stubbed out: best of ``repeat`` tight loops.

    Run last in the child: it replaces ``client.call`` for good. In a tight loop the caches stay hot, so these
    are lower bounds; between real round trips the same work takes about twice as long. Rows starting "-" are
    inside the row above them; "entry" is what ``lambda_handler`` adds around ``route`` (powertools' context
    injection, the EMF flush, the deadline).
    """
    import handler
    from handler.aws import entry
    from handler.deadletter.record import Source
    from handler.im import client
    from handler.im.codes import Origin
    from handler.model import split_payload
    from handler.outcome import DEAD_LETTERED, report_all
    from handler.runtime import runtime
    from handler.sources import direct
    from timpush.context import LocalContext

    answer = client.ImResult(0, "", Origin.REMOTE, 200, {"ActionStatus": "OK", "ErrorCode": 0}, 0.0003)
    client.call = lambda *_args, **_kwargs: answer
    context, rt, source = LocalContext(), runtime(), Source("direct", "bench")
    outcomes = [rt.modifier.apply_all(split_payload(mod), FAR) for mod in mods]
    measured = {name: _best(part, mods, repeat)
                for name, part in _parts(handler.lambda_handler, entry.route, direct, context, rt, source).items()}
    later = {"report": lambda o: report_all(o, DEAD_LETTERED, source.as_dict()),
             "log": lambda o: _log_line(o[0], source.as_dict()), "summary": direct.summary}
    measured.update({name: _best(part, outcomes, repeat) for name, part in later.items()})
    m = measured
    return {
        WHOLE: m["whole"],
        "entry: powertools' context injection + EMF flush, deadline": max(m["whole"] - m["route"], 0.0),
        "route: trigger recognised, correlation id": max(m["route"] - m["handle"], 0.0),
        "direct.handle": m["handle"],
        "- modifier.apply_all: validate, order, pace, sign, body, outcome": m["apply"],
        "- - validation (handler.model)": m["validate"],
        "- outcome log line + 2 metrics (report_all)": m["report"],
        "- - of which the log line (powertools Logger)": m["log"],
        "- results summary": m["summary"],
        "- the rest: split, issue time, dead letters": max(m["handle"] - m["apply"] - m["report"] - m["summary"], 0.0),
        "(2 metrics + EMF flush alone, powertools Metrics)": m["metrics"],
    }


def _parts(lambda_handler: Callable[..., Any], route: Callable[..., Any], direct: Any, context: Any, rt: Any,
           source: Any) -> dict[str, Callable[[Any], object]]:
    from datetime import UTC, datetime

    from handler.model import split_payload, validate
    from handler.observability import metrics

    now = datetime.now(UTC)

    def metrics_once(_mod: Any) -> None:
        metrics.add_metric(name="ModificationsSucceeded", unit="Count", value=1)
        metrics.add_metric(name="UpstreamLatency", unit="Milliseconds", value=0.3)
        metrics.flush_metrics()

    return {
        "whole": lambda mod: lambda_handler(mod, context),
        "route": lambda mod: route(mod, context, rt, FAR),
        "handle": lambda mod: direct.handle(mod, source, rt, FAR),
        "apply": lambda mod: rt.modifier.apply_all(split_payload(mod), FAR),
        "validate": lambda mod: validate(mod, sdkappid=support.APP, now=now),
        "metrics": metrics_once,
    }


def _log_line(outcome: Any, source: dict[str, Any]) -> None:
    from handler.outcome import _fields, _log, fate_of

    fate = fate_of(outcome, "dead_lettered")
    _log(outcome, fate, _fields(outcome, fate, source, {}))


def _best(part: Callable[[Any], object], items: list[Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for item in items:
            part(item)
        best = min(best, (time.perf_counter() - started) / len(items))
    return best


def _slow_modify(url: str, seconds: float) -> None:
    fault = json.dumps({"kind": "slow", "api": "modify", "probability": 1.0, "delay": seconds}).encode()
    request = urllib.request.Request(f"{url}/_emulator/faults", data=fault, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310  # loopback http
        pass


def run(n: int = N, rounds: int = ROUNDS) -> tuple[str, dict[str, Any]]:
    with support.emulator(rate_limit=0, tasks=20) as served, tempfile.TemporaryDirectory() as tmp:
        env = support.handler_env(served.url, Path(tmp) / "dead-letters.jsonl", rate_limit=0)
        params = {"url": served.url, "tasks": served.tasks, "n": n, "rounds": rounds, "which": list(CANDIDATES),
                  "breakdown": True}
        loopback = support.run_child("bench.bench_warm", params, env)
        _slow_modify(served.url, LATENCY)
        params.update(n=LATENCY_N, rounds=LATENCY_ROUNDS, which=["floor", "handler", "naive"], breakdown=False)
        slow = support.run_child("bench.bench_warm", params, env)
    result = {"loopback": loopback, "latency": slow}
    return report(result), result


def report(result: dict[str, Any]) -> str:
    loopback, slow = result["loopback"], result["latency"]
    return (_table(loopback, f"Warm overhead: {loopback['n']} modifications x {loopback['rounds']} interleaved rounds, "
                             "loopback emulator answering in ~0.3 ms (rate limits off)", goal=True)
            + "\n" + _table(slow, f"Warm overhead with {LATENCY * 1000:.0f} ms server latency: {slow['n']} "
                                  f"modifications x {slow['rounds']} rounds (context for the goal, not the goal)")
            + "\n" + _breakdown(loopback["breakdown"]))


WHOLE = "whole invocation (network stubbed)"


def _breakdown(costs: dict[str, float]) -> str:
    whole = costs[WHOLE]
    rows = [[name, f"{cost * 1e6:.1f}", f"{cost / whole:.0%}"] for name, cost in costs.items()]
    return support.table("Where the handler's own time goes: one invocation, network stubbed, tight loop (hot caches)",
                         ["part", "us", "share"], rows)


def _table(result: dict[str, Any], title: str, goal: bool = False) -> str:
    times, failures = result["times"], result["failures"]
    floor = support.median(times["floor"])
    rows = []
    for name in times:
        median = support.median(times[name])
        verdict = ""
        if goal and name == "handler":
            verdict = f"<= {GOAL}: {'met' if median / floor <= GOAL else 'MISSED'}"
        rows.append([name, support.ms(median), support.ms(min(times[name])), f"{median / floor:.3f}",
                     f"{(median - floor) * 1e6:+.0f}", failures[name], verdict])
    return support.table(title, ["candidate", "median ms/mod", "best ms/mod", "ratio vs floor",
                                 "vs floor us/mod", "failed", "goal"], rows)


if __name__ == "__main__":
    if support.is_child():
        support.child_main(child)
    else:
        print(run()[0])
