"""Issue 25's blip story: a Redis restarted for about 0.3 s with its data kept (an append-only file) during
``timpush send --to direct`` of 30 rows costs nothing: 30 of 30 succeeded, exit 0 (it was 19 of 30, exit 1).

The restart is set off by the emulator itself, as it receives row BLIP_AT: the server is stopped before that row
is answered, so the row's record (and the next row's claim) meet a store that refuses, for certain; it comes back
0.3 s later with what it held. What the servers saw is counted: each row sent once, every task at its new time,
every row's order kept in Redis across the restart, and the transient faults the modifier rode out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handler import runtime
from handler.order import faults
from tests.fakes.redis_server import RedisServer, keep_data
from tests.support.im import ADMIN, APP, KEY, add_task, get_task, modify_requests
from tests.support.lambda_events import configure
from timpush.cli import main
from timpush.emulator import Emulator, EmulatorSettings
from timpush.emulator.core import Reply, Request

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROWS = 30
BLIP_AT = 10  # the modify request that sets off the restart
BLIP = 0.3  # seconds the server is away (plus its own start-up)
NEW = "2031-03-03 03:03:00"


class CountingLog:
    """The modifier's logger, counting the store faults it tried again (the lines are below the run's level)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.retries = 0

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        if message.startswith("state store fault: trying again"):
            self.retries += 1
        self.inner.info(message, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[RedisServer]:
    server = keep_data(RedisServer(), tmp_path)
    server.start()
    yield server
    server.stop()


def _blip_on(emu: Emulator, server: RedisServer) -> list[threading.Thread]:
    """Stop ``server`` while the emulator holds modify request BLIP_AT; start it again BLIP seconds later."""
    core = emu._core  # noqa: SLF001 (the emulator's request path: the test's trigger)
    serve = core.serve
    seen: list[int] = []
    started: list[threading.Thread] = []

    def serve_and_blip(request: Request) -> Reply:
        if request.path.endswith("/modify_sched_task"):
            seen.append(1)
            if len(seen) == BLIP_AT:
                server.stop()  # before this row is answered: its record meets a server that is gone
                later = threading.Thread(target=lambda: (time.sleep(BLIP), server.start()))
                later.start()
                started.append(later)
        return serve(request)

    core.serve = serve_and_blip  # type: ignore[method-assign]
    return started


def test_a_restart_of_a_third_of_a_second_costs_nothing(durable: RedisServer, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from handler.state.redis_store import forget_clients

    counting = CountingLog(faults.logger)
    monkeypatch.setattr(faults, "logger", counting)
    with Emulator(EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=11, rate_limit=0)) as emu:
        tasks = [add_task(emu) for _ in range(ROWS)]
        rows = tmp_path / "rows.csv"
        rows.write_text("TaskID,Type,SchedAt\n" + "".join(f"{t},All,{NEW}\n" for t in tasks), encoding="utf-8")
        configure(monkeypatch, {"IM_ENDPOINT": emu.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY,
                                "IM_ADMIN": ADMIN, "IM_STATE_STORE": durable.url, "IM_RATE_FALLBACK": "5",
                                "DEAD_LETTER": f"file:{tmp_path / 'dead.jsonl'}"})
        forget_clients()
        emu.clear_requests()
        restarts = _blip_on(emu, durable)
        run_id = durable.client().info("server")["run_id"]
        began = time.monotonic()
        code = main(["send", "--from", str(rows), "--to", "direct"])
        took = time.monotonic() - began
        for thread in restarts:
            thread.join(timeout=30)
        out = capsys.readouterr().out
        sent = modify_requests(emu)
        at = {t: get_task(emu, t)["SchedAt"] for t in tasks}
    forget_clients()
    runtime.reset()
    print(f"blip: {ROWS} rows, {counting.retries} store retries, {took:.1f} s")  # the figures, with -s
    assert code == 0, out
    assert f"{ROWS} succeeded, 0 superseded, 0 failed, 0 skipped, 0 not sent" in out
    assert durable.client().info("server")["run_id"] != run_id  # it did restart
    assert counting.retries >= 1  # and the modifier rode it out
    assert sorted(r["body"]["TaskID"] for r in sent) == sorted(tasks)  # type: ignore[index]  # each once
    assert set(at.values()) == {NEW}
    kept = [durable.client().hget(f"task#{APP}#{t}", "sched_at_key") for t in tasks]
    assert all(kept)  # every row's order, the ones before the restart included, is still in the store
    assert not (tmp_path / "dead.jsonl").exists()
