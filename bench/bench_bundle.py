"""5. Bundle: the Lambda artifact's size, and cold import of ``handler`` from the unpacked artifact.

The artifact is built with ``timpush.bundle.build`` under a temporary directory (never ``build/``): arm64 as
deployed, and x86_64 with and without precompiled ``.pyc`` so that this machine's Python 3.12 can import it.
Each import runs in a fresh ``python3.12 -B -s`` process in the unpacked folder with a clean environment, as
Lambda's read-only ``/var/task`` (``-B``: nothing compiled is written back, so a source-only bundle compiles
every module at every cold start). Rounds are interleaved; medians of wall time measured by the parent, each
program leaving with ``os._exit`` as soon as its import is done (no interpreter teardown).
"""

from __future__ import annotations

import os
import subprocess  # noqa: S404  # python3.12 with fixed argument lists
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from bench import support

RUNS = 15
# Each program leaves with os._exit once its import is done: interpreter teardown is not part of a cold start.
_DONE = "; import os; os._exit(0)"
PROGRAMS = {
    "interpreter only": "pass" + _DONE,
    "import requests": "import requests" + _DONE,
    "import handler, source only": "import handler; handler.lambda_handler" + _DONE,
    "import handler, with .pyc": "import handler; handler.lambda_handler" + _DONE,
}


def _sizes(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    return {"zipped": path.stat().st_size, "unzipped": sum(i.file_size for i in infos), "files": len(infos),
            "pyc": sum(i.file_size for i in infos if i.filename.endswith(".pyc"))}


def _unpack(path: Path, where: Path) -> Path:
    with zipfile.ZipFile(path) as archive:
        archive.extractall(where)
    return where


def _time(python: str, program: str, cwd: Path) -> float:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    started = time.perf_counter()
    done = subprocess.run([python, "-B", "-s", "-c", program], cwd=cwd, env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{program!r} failed in {cwd}:\n{done.stderr[-2000:]}")
    return elapsed


def run(runs: int = RUNS) -> tuple[str, dict[str, Any]]:
    from timpush import bundle

    python = bundle.find_python312()
    result: dict[str, Any] = {"sizes": {}, "times": {}, "python": python}
    with tempfile.TemporaryDirectory(prefix="timpush-bench-bundle-") as tmp:
        root = Path(tmp)
        builds = {"arm64, with .pyc (deployed)": ("arm64", True), "x86_64, with .pyc": ("x86_64", True),
                  "x86_64, source only": ("x86_64", False)}
        paths = {}
        for label, (arch, with_pyc) in builds.items():
            started = time.perf_counter()
            paths[label] = bundle.build(root / f"{arch}-{with_pyc}.zip", arch=arch, with_pyc=with_pyc)
            result["sizes"][label] = {**_sizes(paths[label]), "build_s": time.perf_counter() - started}
        if python is None:
            result["times"] = None
            return report(result, runs), result
        folders = {"with": _unpack(paths["x86_64, with .pyc"], root / "with"),
                   "without": _unpack(paths["x86_64, source only"], root / "without")}
        where = {name: folders["without" if "source only" in name else "with"] for name in PROGRAMS}
        names = list(PROGRAMS)
        for name in names:  # warm-up: the page cache, and python3.12's own stdlib caches
            _time(python, PROGRAMS[name], where[name])
        times: dict[str, list[float]] = {name: [] for name in names}
        for index in range(runs):
            for name in names[index % len(names):] + names[: index % len(names)]:
                times[name].append(_time(python, PROGRAMS[name], where[name]))
        result["times"] = times
    return report(result, runs), result


def report(result: dict[str, Any], runs: int) -> str:
    size_rows = [[label, f"{s['zipped'] / 1e6:.2f}", f"{s['unzipped'] / 1e6:.2f}", f"{s['pyc'] / 1e6:.2f}",
                  s["files"], f"{s['build_s']:.0f}"] for label, s in result["sizes"].items()]
    text = support.table("Bundle: the Lambda artifact (timpush.bundle.build, cp312 wheels)",
                         ["artifact", "zipped MB", "unzipped MB", "of which .pyc MB", "files", "build s"],
                         size_rows, note="Lambda's limits: 50 MB zipped for a direct upload, 250 MB unzipped.")
    times = result["times"]
    if times is None:
        return text + "\n(no Python 3.12 found: import times not measured)\n"
    base = support.median(times["import requests"])
    rows = [[name, support.ms(support.median(t), 1), support.ms(min(t), 1), f"{support.median(t) / base:.2f}"]
            for name, t in times.items()]
    pyc, source = (support.median(times[f"import handler, {kind}"]) for kind in ("with .pyc", "source only"))
    return text + "\n" + support.table(
        f"Cold import from the unpacked x86_64 artifact: python3.12 -B -s, fresh process, {runs} runs each",
        ["program", "median ms", "best ms", "ratio vs import requests"], rows,
        note=f"precompiled .pyc save {1000 * (source - pyc):.0f} ms per cold start ({source / pyc:.1f}x). "
             f"Python: {result['python']}")


if __name__ == "__main__":
    print(run()[0])
