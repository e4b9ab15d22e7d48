"""The signed query string, before and after the fix found by the warm benchmark (side by side).

``client.call`` used to pass the query as ``params=``: requests escapes the UserSig's ``*`` as ``%2A``, and
urllib3 then re-encodes the whole ~250-character query byte by byte in Python on every request. It now
builds the query itself with the UserSig as it is (its alphabet is URL-safe). Three clients send the same
modifications to the emulator, rounds interleaved: the floor, ``client.call`` as it is, and the same
``SESSION.post`` with ``params=`` as it was.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import support
from bench.bench_warm import _floor

N = 300
ROUNDS = 7


def _now(url: str, mods: list[dict[str, Any]]) -> Callable[[], int]:
    from handler.im import client
    from handler.im.usersig import generate

    creds = client.Credentials(support.APP, support.ADMIN, generate(support.APP, support.KEY, support.ADMIN))
    bodies = [{"Sdkappid": support.APP, **mod} for mod in mods]

    def run() -> int:
        return sum(not client.call(url, "modify_sched_task", body, creds).ok for body in bodies)

    return run


def _before(url: str, mods: list[dict[str, Any]]) -> Callable[[], int]:
    from handler.im import client
    from handler.im.usersig import generate

    sig = generate(support.APP, support.KEY, support.ADMIN)
    bodies = [{"Sdkappid": support.APP, **mod} for mod in mods]

    def run() -> int:
        failed = 0
        for body in bodies:
            params = {"usersig": sig, "identifier": support.ADMIN, "sdkappid": str(support.APP),
                      "random": str(secrets.randbelow(2**32)), "contenttype": "json"}
            answer = client.SESSION.post(f"{url}/v4/timpush/modify_sched_task", params=params, json=body,
                                         timeout=(client.CONNECT_TIMEOUT, client.READ_TIMEOUT))
            failed += answer.json()["ErrorCode"] != 0
        return failed

    return run


CANDIDATES = {"floor": _floor, "client.call, query built by hand (now)": _now,
              "client.call's post with params= (before)": _before}


def child(params: dict[str, Any]) -> dict[str, Any]:
    n, rounds, url = params["n"], params["rounds"], params["url"]
    mods = support.modifications(params["tasks"], n)
    runners = {name: make(url, mods) for name, make in CANDIDATES.items()}
    for run in runners.values():
        run()  # warm-up round
    times, failures = support.interleave(runners, rounds, n)
    return {"times": times, "failures": failures}


def run(n: int = N, rounds: int = ROUNDS) -> tuple[str, dict[str, Any]]:
    with support.emulator(rate_limit=0, tasks=20) as served, tempfile.TemporaryDirectory() as tmp:
        env = support.handler_env(served.url, Path(tmp) / "dead-letters.jsonl", rate_limit=0)
        result = support.run_child("bench.bench_query", {"url": served.url, "tasks": served.tasks, "n": n,
                                                         "rounds": rounds}, env)
    return report(result, n, rounds), result


def report(result: dict[str, Any], n: int, rounds: int) -> str:
    times, failures = result["times"], result["failures"]
    floor = support.median(times["floor"])
    rows = [[name, support.ms(support.median(t)), f"{support.median(t) / floor:.3f}",
             f"{(support.median(t) - floor) * 1e6:+.0f}", failures[name]] for name, t in times.items()]
    return support.table(f"The signed query, before and after: {n} requests x {rounds} interleaved rounds",
                         ["client", "median ms/request", "ratio vs floor", "vs floor us", "failed"], rows)


if __name__ == "__main__":
    if support.is_child():
        support.child_main(child)
    else:
        print(run()[0])
