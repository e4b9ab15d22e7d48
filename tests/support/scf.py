"""Running ``handler.main_handler`` on Python 3.10, SCF's runtime, in a subprocess.

``./dev test`` builds ``.venv-scf``: Python 3.10 with the runtime dependencies only (what the SCF zip
carries: no boto3, no test tools). The tests keep their servers (emulator, fake TDMQ) in the pytest
process and run each invocation as ``timpush invoke --platform scf -`` in that interpreter, so the
handler is imported and run by 3.10 exactly as SCF would. A machine without it skips these tests;
CI (``CI=true``) fails them instead, so a missing 3.10 is never a silent gap.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from timpush.demo import EVENTS

ROOT = Path(__file__).resolve().parents[2]
SCF_PYTHON = ROOT / ".venv-scf" / "bin" / "python"
SCF_EVENTS = EVENTS / "scf"
SCF_TIMEOUT = 60  # seconds a subprocess may take (an invocation retries within its own 30 s)


@cache
def _python310() -> str | None:
    """Why the SCF interpreter is unusable, or None when it is Python 3.10."""
    if not SCF_PYTHON.exists():
        return f"{SCF_PYTHON} is missing (./dev test builds it from a Python 3.10)"
    probe = subprocess.run([str(SCF_PYTHON), "-c", "import sys; print(*sys.version_info[:2])"],
                           capture_output=True, text=True, timeout=SCF_TIMEOUT, check=False)
    if probe.stdout.split() != ["3", "10"]:
        return f"{SCF_PYTHON} is not Python 3.10: {probe.stdout.strip() or probe.stderr.strip()}"
    return None


def require_python310() -> str:
    """The 3.10 interpreter; skip without it, but fail in CI."""
    problem = _python310()
    if problem and os.environ.get("CI"):
        pytest.fail(f"CI runs the SCF tests on Python 3.10: {problem}")
    if problem:
        pytest.skip(problem)
    return str(SCF_PYTHON)


@dataclass(frozen=True)
class Invocation:
    returncode: int
    result: Any  # the return value (None when the invocation raised)
    stderr: str

    @property
    def logs(self) -> list[dict[str, Any]]:
        """The handler's JSON log lines."""
        return [json.loads(line) for line in self.stderr.splitlines() if line.startswith("{")]

    def outcomes(self) -> list[dict[str, Any]]:
        return [line for line in self.logs if "outcome" in line]


def sample(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SCF_EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return doc


def run_python310(arguments: list[str], stdin: str = "", env: dict[str, str] | None = None,
                  ) -> subprocess.CompletedProcess[str]:
    """``python ARGUMENTS`` in SCF's interpreter, from the repository, with exactly ``env`` (plus PATH,
    HOME, loopback NO_PROXY and ``TENCENTCLOUD_RUNENV=SCF``)."""
    python = require_python310()
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
               "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
               "TENCENTCLOUD_RUNENV": "SCF", "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    return subprocess.run([python, *arguments], input=stdin, capture_output=True, text=True, cwd=ROOT,
                          env=environ, timeout=SCF_TIMEOUT, check=False)


def invoke(event: Any, env: dict[str, str], timeout_seconds: float = 30) -> Invocation:
    """One SCF invocation of ``event`` on Python 3.10 with exactly ``env`` (plus PATH and loopback NO_PROXY)."""
    done = run_python310(["-m", "timpush.cli", "invoke", "--platform", "scf", "--timeout", str(timeout_seconds), "-"],
                         json.dumps(event), env)
    result = json.loads(done.stdout) if done.returncode == 0 and done.stdout.strip() else None
    return Invocation(done.returncode, result, done.stderr)
