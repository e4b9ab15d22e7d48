"""``timpush redrive --from tdmq-cmq:REGION/QUEUE``: SCF's dead letters, read through TDMQ for CMQ's data-flow API.

Each received message stays hidden for the queue's visibility timeout while the run decides about it
(the data-flow API cannot release it sooner), is deleted once re-submitted, and otherwise comes back by
itself after the timeout: a message that is not a record, or not chosen, is kept. Credentials are
``TENCENTCLOUD_SECRETID``/``SECRETKEY``[/``SESSIONTOKEN``] or the tencentcloud SDK's standard chain; the
address is the region's public one, or ``TENCENTCLOUD_TDMQ_ENDPOINT`` (the console's "API request address").
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from handler.config import ConfigError
from handler.deadletter.cmq import CmqError, CmqQueue, Received
from handler.deadletter.record import parse_record, parse_tdmq_target
from timpush.redrive.sources import BATCH, RECEIVE_WAIT, Letter
from timpush.runctl import Usage

CALL_BUDGET = 30.0  # seconds one call may spend backing off from throttled answers


class TdmqSource:
    """A TDMQ for CMQ queue: messages are received hidden, deleted once re-submitted, left to reappear otherwise."""

    def __init__(self, target: str) -> None:
        self.spec = "tdmq-cmq:" + target
        self.total: int | None = None
        self.undeleted = 0
        self._seen: set[str] = set()
        try:
            region, name = parse_tdmq_target(target)
            self.queue = CmqQueue(region, name, os.environ)
        except (ValueError, ConfigError) as exc:  # ConfigError is not a ValueError: both named
            raise Usage(f"--from {self.spec}: {exc}") from None

    def batches(self) -> Iterator[list[Letter]]:
        while True:
            batch = self._receive()
            if not batch:
                return
            yield [Letter(parse_record(m.body), m) for m in batch]

    def _receive(self) -> list[Received]:
        """Up to BATCH fresh messages; fewer at an empty queue or one seen before (its hiding ran out)."""
        got: list[Received] = []
        while len(got) < BATCH:
            message = self.queue.receive(RECEIVE_WAIT if not got else 0, time.monotonic() + CALL_BUDGET)
            if message is None or message.msg_id in self._seen:
                break
            self._seen.add(message.msg_id)
            got.append(message)
        return got

    def remove(self, letters: Sequence[Letter]) -> None:
        for letter in letters:
            try:
                self.queue.delete(letter.ref.receipt, time.monotonic() + CALL_BUDGET)
            except CmqError as exc:
                self.undeleted += 1
                print(f"timpush redrive: re-submitted but not deleted ({exc}); it will be seen again",
                      file=sys.stderr)

    def leave(self, letters: Sequence[Letter]) -> None:
        """Nothing to do: a message not deleted is visible again after the queue's visibility timeout."""

    def finish(self, appended: Sequence[dict[str, Any]] = ()) -> None:
        """Nothing to settle: see ``leave``."""
