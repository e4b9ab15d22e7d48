"""2. Cold start: a new process, from exec to one modification done, vs the floor.

- **floor**: a process that imports ``requests`` and sends one prebuilt request (UserSig made beforehand).
- **handler**: a process that imports ``handler``, gets ``lambda_handler`` and runs one direct payload
  (configuration parsed, secret read from the environment, UserSig made, request sent, log line, metrics).
- **naive**: a process that imports ``bench.naive`` and sends one modification with it.
- two more handler rows: with ``PYDANTIC_DISABLE_PLUGINS=1``, and as before the lazy-import fix (the HTTP
  adapter imported first, as ``route`` used to for every event).

All three run this interpreter with the same environment against one running emulator, interleaved (the
order rotates every round), after two warm-up rounds that also leave the ``.pyc`` caches written, as a
deployed function has them. Wall time is measured by the parent around ``subprocess.run``; each program
leaves with ``os._exit`` as soon as its modification is done, so interpreter teardown (which Lambda never does
between invocations, and which costs the handler's 436 modules ~40 ms) is not counted.
"""

from __future__ import annotations

import json
import subprocess  # noqa: S404  # this interpreter, fixed argument lists
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import support

RUNS = 20
Completed = subprocess.CompletedProcess[str]
# The one variable found that skips cold-start work: pydantic then does not scan every installed
# distribution's entry points for plugins at its first model. (No POWERTOOLS_* variable skips import work;
# POWERTOOLS_TRACE_DISABLED, the default here, already keeps the Tracer and aws-xray-sdk out.)
SKIP_PLUGINS = {"PYDANTIC_DISABLE_PLUGINS": "1"}
HANDLER_SKIPPING = "handler, PYDANTIC_DISABLE_PLUGINS=1"
# Before the fix, ``route`` imported the HTTP adapter (powertools' resolvers) for every event.
HANDLER_BEFORE = "handler as before: HTTP adapter imported for every event"
WARMUP = 2
GOAL = 2.0
TOP = 10
CHAIN = 0.9  # a module costing this share of its importer is listed as the importer

# Every program ends with done(failed): the clock stops when the modification is done, not after the
# interpreter has torn itself down (40 ms of garbage collection and module teardown for the handler, which
# Lambda never does between invocations). os and sys are loaded at startup: the prelude costs nothing.
_PRELUDE = '''import os, sys
def done(failed):
    sys.stdout.flush(); sys.stderr.flush(); os._exit(1 if failed else 0)
'''
_CONTEXT = '''
class Context:
    function_name = "timpush-modifier-bench"; function_version = "$LATEST"; memory_limit_in_mb = 256
    aws_request_id = "cold-start"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:timpush-modifier-bench"
    def get_remaining_time_in_millis(self): return 60000
'''


def scripts(url: str, mod: dict[str, Any]) -> dict[str, str]:
    """The three programs, each exiting non-zero unless its modification succeeded."""
    from handler.im.usersig import generate

    sig = generate(support.APP, support.KEY, support.ADMIN)
    target = (f"{url}/v4/timpush/modify_sched_task?sdkappid={support.APP}&identifier={support.ADMIN}"
              f"&usersig={sig}&random=1&contenttype=json")
    body = json.dumps({"Sdkappid": support.APP, **mod})
    return {
        "floor": _PRELUDE + (
            "import requests\n"
            f"answer = requests.post({target!r}, data={body!r}, headers={{'Content-Type': 'application/json'}},"
            " timeout=10).json()\n"
            "done(answer['ErrorCode'])\n"
        ),
        "handler": _PRELUDE + (
            "import handler\n"
            f"{_CONTEXT}"
            f"result = handler.lambda_handler({mod!r}, Context())\n"
            "done(result['succeeded'] != 1)\n"
        ),
        "naive": _PRELUDE + (
            "from bench import naive\n"
            f"done(naive.modify({url!r}, {support.APP}, {support.KEY!r}, {support.ADMIN!r}, {mod!r}))\n"
        ),
    }


def _once(script: str, env: dict[str, str], extra: tuple[str, ...] = ()) -> tuple[float, Completed]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *extra, "-c", script], cwd=support.ROOT, env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cold-start program failed ({done.returncode}):\n{script}\n{done.stderr[-2000:]}")
    return elapsed, done


def importtime(script: str, env: dict[str, str], top: int = TOP) -> list[tuple[str, str, float, float]]:
    """``-X importtime``'s largest cumulative costs: (module, imported by, self ms, cumulative ms).

    An importer that is nearly all one import (``aws_lambda_powertools.utilities`` is all
    ``aws_lambda_powertools``) is the same cost counted again: such a chain is listed once, as its innermost
    module, the one whose code the time is spent on.
    """
    _, done = _once(script, env, ("-X", "importtime"))
    entries = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own_us, cumulative_us, field = line.removeprefix("import time:").split("|")
        level = (len(field) - len(field.lstrip()) - 1) // 2
        entries.append((level, field.strip(), int(own_us) / 1000, int(cumulative_us) / 1000))
    rows: dict[int, tuple[str, str, float, float]] = {}
    ancestors: list[tuple[int, int, str, float]] = []  # children come before their parent: walk backwards
    for index, (level, name, own, cumulative) in enumerate(reversed(entries)):
        while ancestors and ancestors[-1][1] >= level:
            ancestors.pop()
        parent = ancestors[-1] if ancestors else None
        if parent is not None and cumulative >= CHAIN * parent[3]:
            rows.pop(parent[0], None)
        rows[index] = (name, parent[2] if parent else "(program)", own, cumulative)
        ancestors.append((index, level, name, cumulative))
    return sorted(rows.values(), key=lambda row: -row[3])[:top]


def modules_loaded(script: str, env: dict[str, str]) -> int:
    probe = script.replace("\ndone(", "\nprint(len(sys.modules)); done(", 1)
    _, done = _once(probe, env)
    return int(done.stdout.strip().splitlines()[-1])


def run(runs: int = RUNS) -> tuple[str, dict[str, Any]]:
    with support.emulator(rate_limit=0, tasks=1) as served, tempfile.TemporaryDirectory() as tmp:
        env = support.handler_env(served.url, Path(tmp) / "dead-letters.jsonl", rate_limit=5)
        programs = scripts(served.url, support.modification(served.tasks[0], 0))
        programs[HANDLER_SKIPPING] = programs["handler"]
        programs[HANDLER_BEFORE] = programs["handler"].replace("import handler\n", "import handler.sources.http\n")
        envs = {name: {**env, **SKIP_PLUGINS} if name == HANDLER_SKIPPING else env for name in programs}
        names = list(programs)
        for _ in range(WARMUP):
            for name in names:
                _once(programs[name], envs[name])
        times: dict[str, list[float]] = {name: [] for name in names}
        for index in range(runs):
            for name in names[index % len(names):] + names[: index % len(names)]:
                times[name].append(_once(programs[name], envs[name])[0])
        imports = importtime(programs["handler"], env)
        loaded = {name: modules_loaded(programs[name], envs[name]) for name in names}
    result = {"times": times, "importtime": imports, "modules": loaded}
    return report(result, runs), result


def report(result: dict[str, Any], runs: int) -> str:
    times, loaded = result["times"], result["modules"]
    floor = support.median(times["floor"])
    rows = []
    for name in times:
        median = support.median(times[name])
        judged = name.startswith("handler") and name != HANDLER_BEFORE
        goal = f"<= {GOAL}x: {'met' if median / floor <= GOAL else 'MISSED'}" if judged else ""
        low, high = support.quartiles([mine / base for mine, base in zip(times[name], times["floor"], strict=True)])
        rows.append([name, support.ms(median, 1), support.ms(min(times[name]), 1), f"{median / floor:.2f}",
                     f"{low:.2f}-{high:.2f}", loaded[name], goal])
    text = support.table(
        f"Cold start: new process to one modification done ({runs} interleaved runs each)",
        ["candidate", "median ms", "best ms", "ratio vs floor", "round-paired ratio IQR", "modules loaded",
         "goal"], rows,
        note="ratio: of the medians; IQR: quartiles of the ratio within each round (same moment, same load).")
    imports = [[name, parent, f"{cumulative:.1f}", f"{own:.1f}"]
               for name, parent, own, cumulative in result["importtime"]]
    text += "\n" + support.table(
        f"-X importtime of the handler program: the {TOP} largest cumulative costs",
        ["module", "imported by", "cumulative ms", "self ms"], imports,
        note="(an importer that is nearly all one import is listed as that import)")
    return text


if __name__ == "__main__":
    print(run()[0])
