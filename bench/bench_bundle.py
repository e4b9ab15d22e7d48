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


def _pyc_check(path: Path, python: str, folder: Path) -> dict[str, int]:
    """Whether the .pyc are valid for python3.12 and are what it loads.

    ``valid``: .pyc with python3.12's magic number and the unchecked-hash flags; ``sources``: .py files;
    ``loaded_pyc`` / ``compiled``: modules the import of ``handler`` took from a .pyc / compiled from source
    (``python -v`` says which file each code object came from).
    """
    magic = subprocess.run([python, "-c", "import importlib.util as u, sys; sys.stdout.write(u.MAGIC_NUMBER.hex())"],  # noqa: S603
                           capture_output=True, text=True, check=True, timeout=60).stdout
    with zipfile.ZipFile(path) as archive:
        pycs = [archive.read(name)[:8] for name in archive.namelist() if name.endswith(".cpython-312.pyc")]
        sources = sum(1 for name in archive.namelist() if name.endswith(".py"))
    valid = sum(1 for head in pycs if head[:4].hex() == magic and int.from_bytes(head[4:8], "little") == 1)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    verbose = subprocess.run([python, "-B", "-s", "-v", "-c", PROGRAMS["import handler, with .pyc"]],  # noqa: S603
                             cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False).stderr
    ours = [line for line in verbose.splitlines() if line.startswith("# code object from") and str(folder) in line]
    return {"pyc": len(pycs), "valid": valid, "sources": sources,
            "loaded_pyc": sum(1 for line in ours if line.rstrip("'").endswith(".pyc")),
            "compiled": sum(1 for line in ours if line.rstrip("'").endswith(".py"))}


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
        result["pyc"] = _pyc_check(paths["x86_64, with .pyc"], python, folders["with"])
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
    check = result["pyc"]
    text += (f"\n.pyc for python3.12: {check['valid']} of {check['pyc']} carry its magic number and the unchecked-hash "
             f"flag ({check['sources']} .py files); importing handler loaded {check['loaded_pyc']} of its modules "
             f"from them and compiled {check['compiled']} from source.\n")
    return text + "\n" + support.table(
        f"Cold import from the unpacked x86_64 artifact: python3.12 -B -s, fresh process, {runs} runs each",
        ["program", "median ms", "best ms", "ratio vs import requests"], rows,
        note=f"precompiled .pyc save {1000 * (source - pyc):.0f} ms per cold start ({source / pyc:.1f}x). "
             f"Python: {result['python']}")


if __name__ == "__main__":
    print(run()[0])
