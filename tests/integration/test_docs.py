"""The docs run: every marked command block of README.md and docs/ runs as a user would run it.

Each block runs in bash (``set -euo pipefail``) in a scratch directory that links to the repository's
files, with the project's ``.venv/bin`` on PATH, a moto SQS server in the environment (``WORK_QUEUE`` is
a queue on it) and port 8080 replaced by a free one. It must exit 0 and print every ``# => TEXT``
it states; background jobs it starts are stopped at its end. How to mark a block: docs/doc-tests.md.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.moto_sqs import MotoSqs, free_port
from tests.support.docblocks import Block, blocks
from tests.support.framework import ensure_framework

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
# Every marked block, by name: a block that loses its marker (or disappears) fails the first test.
MARKED = {
    "operators-emulator", "operators-send", "operators-tasks", "deploy-invoke-local", "dead-letters-redrive-local",
    "deploy-scf-invoke", "secrets-two-apps-local",
}
DOC_PORT = "8080"  # the port the docs use; each run gets a free one instead
BLOCK_TIMEOUT = 240  # seconds; serverless invoke local starts node and python
PREAMBLE = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n"
LEFT_OUT = ("IM_", "DEAD_LETTER", "AWS_", "POWERTOOLS_")  # the block sets what it needs, as a user would
ALL_BLOCKS = blocks(ROOT)


def test_every_marked_block_is_still_there() -> None:
    assert {block.name for block in ALL_BLOCKS} == MARKED


def _workspace(tmp_path: Path) -> Path:
    """A scratch directory that looks like the repository: what a block writes stays out of it."""
    for entry in ROOT.iterdir():
        if entry.name in (".git", ".serverless", "dead-letters.jsonl", "demo-dead-letters.jsonl"):
            continue
        if entry.is_dir():
            (tmp_path / entry.name).symlink_to(entry)
        else:  # copied: the framework does not take a linked serverless.yml
            shutil.copy2(entry, tmp_path / entry.name)
    return tmp_path


@pytest.fixture
def environment(sqs_env: MotoSqs) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEFT_OUT)}
    env.pop("WORK_QUEUE", None)
    env.update(sqs_env.env)
    env["WORK_QUEUE"] = "sqs:" + sqs_env.create_queue("work")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[block.name for block in ALL_BLOCKS])
def test_block_runs_and_prints_what_it_says(block: Block, tmp_path: Path, environment: dict[str, str]) -> None:
    _needs(block)  # before the workspace links to node_modules, which `npm ci` may create
    script = PREAMBLE + block.script.replace(DOC_PORT, str(free_port()))
    output, status = _run(script, _workspace(tmp_path), environment)
    where = f"{block.path}:{block.line} ({block.name})"
    assert status == 0, f"{where} exited {status}:\n{output}"
    missing = [text for text in block.expected if text not in output]
    assert not missing, f"{where} did not print {missing}:\n{output}"


def _needs(block: Block) -> None:
    """``needs=npx``: Node.js and the pinned framework; skipped without Node, except under CI."""
    if block.options.get("needs") == "npx":
        if shutil.which("npx") is None and not os.environ.get("CI"):
            pytest.skip("needs Node.js and npm")
        ensure_framework()


def _run(script: str, cwd: Path, env: dict[str, str]) -> tuple[str, int]:
    process = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE,  # noqa: S607
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the block and whatever it left running
        output, _ = process.communicate()
        return output + f"\n[timed out after {BLOCK_TIMEOUT} s]", -1
    finally:
        _stop_group(process.pid)
    return output, process.returncode


def _stop_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass

