"""What every benchmark shares: the emulator process, the handler's environment, child processes, tables."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess  # noqa: S404  # runs this interpreter with fixed argument lists, never a shell
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APP = 1400000001
ADMIN = "administrator"
KEY = "tp-bench-key-0b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"
KEY_VARIABLE = "IM_SECRET_KEY"
FUTURE = "2031-06-15 14:00:00"
_SCHED_BASE = datetime(2031, 7, 1)
# Variables of the caller's shell that would change what the handler does; the children never inherit them.
_HANDLER_VARIABLES = ("IM_", "DEAD_LETTER", "WORK_QUEUE", "POWERTOOLS_", "AWS_LAMBDA_", "TENCENTCLOUD_")


def modification(task_id: int, index: int) -> dict[str, Any]:
    """The ``index``-th modification of a run: a new SchedAt and title each time, as a campaign tool sends."""
    when = (_SCHED_BASE + timedelta(seconds=index)).strftime("%Y-%m-%d %H:%M:%S")
    return {"TaskID": task_id, "Type": "All", "SchedAt": when,
            "Content": {"OfflinePushInfo": {"Title": f"Title {index}", "Desc": "New text"}}}


def modifications(tasks: Sequence[int], count: int) -> list[dict[str, Any]]:
    return [modification(tasks[index % len(tasks)], index) for index in range(count)]


@dataclass(frozen=True)
class Served:
    url: str
    tasks: list[int]


@contextlib.contextmanager
def emulator(rate_limit: int = 0, tasks: int = 20) -> Iterator[Served]:
    """The IM emulator in its own process (``bench.serve``), with ``tasks`` tasks of type All."""
    env = {**child_env(), KEY_VARIABLE: KEY}
    command = [sys.executable, "-m", "bench.serve", "--rate-limit", str(rate_limit), "--tasks", str(tasks)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.PIPE,  # noqa: S603
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench.serve exited with {process.wait()} before serving")
        info = json.loads(line)
        yield Served(info["url"], info["tasks"])
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without the handler's variables (and with bytecode caches allowed), plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(_HANDLER_VARIABLES)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a deployed function has its .pyc: let the warm-up write them
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


def handler_env(url: str, dead_letters: Path, rate_limit: float = 0) -> dict[str, str]:
    """The handler configured for the emulator, with the key in the environment (laptop mode)."""
    return child_env({
        "IM_ENDPOINT": url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN,
        "IM_RATE_LIMIT": f"{rate_limit:g}", "DEAD_LETTER": f"file:{dead_letters}",
        "POWERTOOLS_METRICS_NAMESPACE": "TimpushBench",
    })


def run_child(module: str, params: Mapping[str, Any], env: Mapping[str, str], timeout: float = 300) -> Any:
    """Run ``python -m module --child PARAMS OUT`` and return the JSON it wrote to OUT.

    The child's stdout and stderr (the handler's log lines and metrics) go to a file, as they would go to
    CloudWatch; it is shown only when the child fails.
    """
    return run_children(module, [params], env, timeout)[0][0]


def run_children(module: str, params: Sequence[Mapping[str, Any]], env: Mapping[str, str],
                 timeout: float = 300) -> list[tuple[Any, str]]:
    """Like ``run_child``, one child per ``params`` entry, all at once; each child's answer and its log."""
    with tempfile.TemporaryDirectory(prefix="timpush-bench-") as tmp:
        running = []
        for index, entry in enumerate(params):
            out, log = Path(tmp) / f"out-{index}.json", Path(tmp) / f"child-{index}.log"
            command = [sys.executable, "-m", module, "--child", json.dumps(entry), str(out)]
            with log.open("w") as sink:
                running.append((subprocess.Popen(command, cwd=ROOT, env=dict(env), stdout=sink,  # noqa: S603
                                                 stderr=sink), out, log))
        answers = []
        for process, out, log in running:
            code = process.wait(timeout)
            text = log.read_text(errors="replace")
            if code != 0 or not out.exists():
                raise RuntimeError(f"{module} child failed ({code}):\n{text[-3000:]}")
            answers.append((json.loads(out.read_text()), text))
        return answers


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="timpush-bench-") as tmp:
        yield Path(tmp)


def emulator_requests(url: str, method: str = "GET") -> list[dict[str, Any]]:
    """The emulator's log of modify_sched_task requests (``DELETE`` clears it)."""
    request = urllib.request.Request(f"{url}/_emulator/requests", method=method)  # noqa: S310  # loopback http
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        document = json.load(answer)
    return [entry for entry in document.get("requests", []) if entry.get("api") == "modify_sched_task"]


def child_main(run: Any) -> None:
    """The child side of ``run_child``: ``run(params)`` and write its JSON answer."""
    params, out = json.loads(sys.argv[2]), Path(sys.argv[3])
    out.write_text(json.dumps(run(params)))


def is_child() -> bool:
    return len(sys.argv) > 1 and sys.argv[1] == "--child"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """The first and third quartiles."""
    first, _, third = statistics.quantiles(values, n=4)
    return first, third


def ms(seconds: float, digits: int = 3) -> str:
    return f"{seconds * 1000:.{digits}f}"


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], note: str = "") -> str:
    """A plain-text (Markdown) table: numbers right-aligned, text left-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in cells[1:] if row[i] not in ("", "-")) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True)]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if num else "-") for w, num in zip(widths, numeric, strict=True)) + "|"
    text = [f"### {title}", "", line(cells[0]), rule, *(line(row) for row in cells[1:])]
    if note:
        text += ["", note]
    return "\n".join(text) + "\n"


def _is_number(cell: str) -> bool:
    try:
        float(cell.rstrip("x%").replace(",", "") or "0")
    except ValueError:
        return False
    return True


def interleave(runners: dict[str, Callable[[], int]], rounds: int, n: int) -> tuple[dict[str, list[float]],
                                                                                   dict[str, int]]:
    """Run every candidate once per round, the order rotating each round so noise falls on all alike.

    Returns the per-modification time of each round and the failures counted, by candidate.
    """
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    failures = dict.fromkeys(names, 0)
    for index in range(rounds):
        for name in names[index % len(names):] + names[: index % len(names)]:
            started = time.perf_counter()
            failures[name] += runners[name]()
            times[name].append((time.perf_counter() - started) / n)
    return times, failures
