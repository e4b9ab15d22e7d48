"""What both platforms' entries share: direct payloads, the HTTP route, the maintenance job's bounds, deadlines.

Each platform's entry and its trigger adapters live in ``handler.aws`` and ``handler.scf``; neither imports the other.
The adapters here ask for the service and the dead letters (``Runtime``), not for the code that builds them
(``handler.runtime``, which the entries call once per process).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from handler.deadletter import DeadLetters
    from handler.service import Modifier

# Seconds kept back from the platform's timeout for finishing after the last attempt: each record's dead letter
# (one SQS or TDMQ write, tens of milliseconds in the region, more on a fresh TLS connection; a batch holds 5 on
# Lambda and up to 20 CKafka messages on SCF, each finished at once), its log line and metrics, and the answer.
# Twenty writes at their slow end fit, with room for one new connection; the deadline every adapter hands on
# is the timeout less this, and no attempt reaches into it (handler.im.retry).
FINISH_RESERVE = 2.0
DEFAULT_BUDGET = 60.0  # when the context cannot say (local runs)


class MalformedEvent(ValueError):
    """The event has a trigger's shape but lacks what that trigger always sends; the message names the field.

    Only a hand-made event can be like this (the platforms send whole ones), so the invocation fails loudly
    with one line that says what is missing, rather than a KeyError from deep inside an adapter.
    """


class Runtime(Protocol):
    """What an adapter uses of the process's runtime: the modifier and the dead-letter routes."""

    @property
    def modifier(self) -> Modifier: ...

    @property
    def dead_letters(self) -> DeadLetters: ...
