"""``timpush send`` on a terminal (a pty): a progress bar, one line per failure, no JSON log lines unless --verbose.

The command runs in a child process whose stdout and stderr are a pseudo-terminal, as for a person at a
shell, against the emulator on loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.im import ADMIN, APP, KEY, add_task
from timpush.emulator import Emulator, EmulatorSettings

pytestmark = pytest.mark.integration

FUTURE = "2031-06-15 14:00:00"
ROOT = Path(__file__).resolve().parents[2]
LOG_LINE = '"service":"timpush-modifier"'  # in every JSON log line of the handler


@pytest.fixture
def fast_emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=7, rate_limit=0)) as emu:
        yield emu


def _on_a_terminal(argv: list[str], env: dict[str, str]) -> str:
    """Run ``timpush argv`` with stdout and stderr on a pty; everything it wrote there."""
    main, child = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "timpush.cli", *argv], stdin=subprocess.DEVNULL,  # noqa: S603
                               stdout=child, stderr=child, env=env, cwd=ROOT)
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert process.wait(timeout=120) == 1  # some rows failed
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_bar_and_one_line_per_failure_and_json_logs_only_with_verbose(
    fast_emulator: Emulator, tmp_path: Path, verbose: bool
) -> None:
    task = add_task(fast_emulator)
    missing = [900 + n for n in range(5)]  # no such tasks: the server refuses them
    rows = [f"{task},All,{FUTURE}\n"] * 55 + [f"{n},All,{FUTURE}\n" for n in missing]
    path = tmp_path / "campaign.csv"
    path.write_text("TaskID,Type,SchedAt\n" + "".join(rows), encoding="utf-8")
    env = {**os.environ, "IM_ENDPOINT": fast_emulator.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY,
           "IM_ADMIN": ADMIN, "IM_RATE_LIMIT": "1000", "DEAD_LETTER": f"file:{tmp_path / 'dl.jsonl'}",
           "NO_PROXY": "127.0.0.1,localhost", "COLUMNS": "120", "TERM": "xterm", "PYTHONPATH": str(ROOT)}
    for name in ("IM_APPS", "IM_SECRET_SOURCE", "DEAD_LETTER_ROUTES", "IM_STATE_STORE"):
        env.pop(name, None)
    output = _on_a_terminal(["send", "--from", str(path), "--to", "direct", "--without-store",
                             *(["--verbose"] if verbose else [])], env)
    assert "━" in output  # the progress bar was drawn
    assert all(f"TaskID {n}:" in output for n in missing)  # one line per failure
    assert "55 succeeded, 0 superseded, 5 failed, 0 skipped, 0 not sent; to direct" in output
    assert (LOG_LINE in output) is verbose
    assert ('{"_aws":' in output) is verbose  # nor the EMF metric lines
    assert (output.count(f"TaskID {task}:") == 55) is verbose  # successes get a line only with --verbose
