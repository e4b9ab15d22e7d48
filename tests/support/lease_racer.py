"""One process of a lease race: claim the task ROUNDS times through the store IM_STATE_STORE names (given as the
first argument), hold it briefly, record a success, and print the wall-clock intervals it held the task
(tests/integration/test_fleet_state.py)."""

from __future__ import annotations

import json
import sys
import time

from handler.order.key import Stamp, TaskKey
from handler.order.task import TaskBusy, TaskOrder
from handler.state.homes import open_store

HOLD = 0.03


def main(spec: str, rounds: int, name: str) -> None:
    order = TaskOrder(open_store(spec))
    held: list[tuple[float, float]] = []
    busy = 0
    while len(held) < rounds:
        try:
            claim = order.claim(TaskKey(1400000001, 42), ("SchedAt",), Stamp(time.time_ns() // 1000, name),
                                time.monotonic() + 10)
        except TaskBusy:
            busy += 1
            continue
        if not claim.kept:
            continue  # another process recorded a newer stamp in the same millisecond
        start = time.time()
        time.sleep(HOLD)
        end = time.time()
        order.applied(claim, None)
        held.append((start, end))
    print(json.dumps({"held": held, "busy": busy}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
