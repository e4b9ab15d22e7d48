"""TDMQ for CMQ for dead letters: the ``tdmq-cmq:REGION/QUEUE`` sink, through the HTTP data-flow API.

Not the cloud API ``SendCmqMsg``: Tencent limits it to 20 calls/s per root account (10/s per sub-account or
role) and marks it "for testing and verification" (1111/63331), so a failing batch across a few instances
would lose its dead letters to the limit and SCF would replay the whole batch. ``handler.deadletter.cmq``
holds the client (its own signature, the function role's credentials, the regional address). Each record
is one message; a throttled send is retried with backoff until the invocation's deadline (set by ``main_handler``
in ``handler.deadletter.record.WRITE_DEADLINE``; a write outside an invocation gets WRITE_BUDGET seconds), and always
at least once more within MIN_BUDGET, which the handler's deadline margin leaves. Every failure becomes a
``DeadLetterError`` naming the queue, a count and Tencent's code, never a body or a credential.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from handler.deadletter.cmq import ENDPOINT_VAR, CmqError, CmqQueue
from handler.deadletter.record import WRITE_DEADLINE, DeadLetterError, parse_tdmq_target

__all__ = ["ENDPOINT_VAR", "TdmqCmqSink"]
WRITE_BUDGET = 10.0  # seconds a write may back off when no invocation deadline is known
MIN_BUDGET = 1.0  # seconds a write may back off even when the work used the invocation up to its deadline


class TdmqCmqSink:
    """Dead letters as TDMQ-CMQ queue messages, the record as the message body."""

    def __init__(self, target: str, environ: Mapping[str, str] | None = None) -> None:
        region, queue = parse_tdmq_target(target)
        self.name = f"tdmq-cmq:{target}"
        self.queue = CmqQueue(region, queue, os.environ if environ is None else environ)

    def write(self, records: list[dict[str, Any]]) -> None:
        deadline = _deadline()
        for sent, doc in enumerate(records):
            try:
                self.queue.send(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), deadline)
            except CmqError as exc:
                raise DeadLetterError(f"{self.name}: {len(records) - sent} of {len(records)} dead letter(s) "
                                      f"not sent (code {exc.code}{f'/{exc.module}' if exc.module else ''})") from None


def _deadline() -> float:
    now = time.monotonic()
    given = WRITE_DEADLINE.get()
    return now + WRITE_BUDGET if given is None else max(given, now + MIN_BUDGET)
