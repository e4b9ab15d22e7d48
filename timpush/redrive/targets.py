"""Where ``timpush redrive`` sends what it chose: the work queue, or the real modifier now (``TargetLike``).

``submit`` answers each record's outcome (``timpush.outcomes``): succeeded, superseded or failed
(a new dead letter was written) leave the source; not sent stays in it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from handler.compat import UTC
from handler.deadletter.record import DeadLetterError, Source, fingerprint, record, redrives_of
from handler.order.travel import issue_of_record
from timpush.outcomes import FAILED, NOT_SENT, SUCCEEDED, SUPERSEDED
from timpush.redrive.sources import BATCH
from timpush.runctl import DIRECT_BUDGET, send_batch

if TYPE_CHECKING:
    from handler.outcome import Outcome
    from handler.runtime import Runtime

Note = Callable[[str], None]  # prints one line about one record (above a progress bar)


class QueueTarget:
    """The work queue: each record's ``raw`` as the body, ``Redrives`` = n + 1."""

    batch = BATCH  # one SQS batch call, then the sent ones leave the source

    def __init__(self, url: str) -> None:
        from handler.deadletter.sqs import Queue

        self.queue = Queue(url)
        self.held: list[dict[str, Any]] = []
        self.produced: set[str] = set()  # none: what it sends goes to the work queue, not back to the source

    def submit(self, docs: Sequence[dict[str, Any]], note: Note) -> list[str]:
        from handler.deadletter.sqs import work_message

        refused, why = send_batch(self.queue, [work_message(doc) for doc in docs])
        for i in sorted(refused):
            note(f"TaskID {_task_id(docs[i])}: {why}; kept in the source")
        return [NOT_SENT if i in refused else SUCCEEDED for i in range(len(docs))]


class DirectTarget:
    """The real modifier now; new failures go to the configured routes with ``redrives`` = n + 1.

    A failure that routes back to the file being read is held and written by the file's rewrite,
    after the lines left. One that routes back to the queue being read is written at once (its
    original is deleted only after that) and remembered in ``produced``, so this run skips it.
    """

    batch = 1  # each record leaves the source as soon as it is applied, so Ctrl-C loses no progress

    def __init__(self, runtime: Runtime, source_spec: str) -> None:
        self.runtime = runtime
        self.source_spec = source_spec
        self.held: list[dict[str, Any]] = []
        self.produced: set[str] = set()  # the fingerprints of what this run wrote back to the source

    def submit(self, docs: Sequence[dict[str, Any]], note: Note) -> list[str]:
        return [self._apply(doc, note) for doc in docs]

    def _apply(self, doc: dict[str, Any], note: Note) -> str:
        from handler.model import split_payload

        deadline = time.monotonic() + DIRECT_BUDGET
        source = Source("redrive", (doc.get("source") or {}).get("id"))
        # ordered by when the change was made, not by now (DESIGN "Order"); an older record has no issued_at
        issue = issue_of_record(doc, datetime.now(UTC))._replace(source="redrive")
        outcomes = self.runtime.modifier.apply_all(split_payload(doc["raw"]), deadline, issue)
        failures = [record(o, source, redrives=redrives_of(doc) + 1) for o in outcomes if o.failed]
        try:
            self._dead_letter(failures)
        except DeadLetterError as exc:
            note(f"TaskID {_task_id(doc)}: failed again and its new dead letter could not be written ({exc}); "
                 "kept in the source")
            return NOT_SENT
        self.runtime.modifier.dead_lettered(outcomes)
        return _verdict(doc, outcomes, note)

    def _dead_letter(self, failures: list[dict[str, Any]]) -> None:
        back = [self._routes_to_source(r) for r in failures]
        hold = self.source_spec.startswith("file:")
        self.runtime.dead_letters.send([r for r, b in zip(failures, back, strict=True) if not (b and hold)])
        for failure in (r for r, b in zip(failures, back, strict=True) if b):
            if hold:
                self.held.append(failure)
            self.produced.add(fingerprint(failure))

    def _routes_to_source(self, doc: dict[str, Any]) -> bool:
        spec = self.runtime.dead_letters.route(doc["error"]["code"], doc["error"]["class"])
        if spec.startswith("file:"):
            spec = "file:" + os.path.abspath(spec[5:])
        return spec == self.source_spec


def _verdict(doc: dict[str, Any], outcomes: Sequence[Outcome], note: Note) -> str:
    """Failed when any of the record's modifications failed again; superseded when all were."""
    failed = [o for o in outcomes if o.failed]
    if failed:
        codes = ", ".join(f"{o.code} {o.info}" for o in failed)
        note(f"TaskID {_task_id(doc)}: failed again ({codes}); dead-lettered through the configured routes")
        return FAILED
    return SUPERSEDED if outcomes and all(o.superseded for o in outcomes) else SUCCEEDED


def _task_id(doc: dict[str, Any]) -> object:
    request = doc.get("request")
    return request.get("TaskID") if isinstance(request, dict) else None


class TargetLike(Protocol):
    batch: int
    held: list[dict[str, Any]]
    produced: set[str]

    def submit(self, docs: Sequence[dict[str, Any]], note: Note) -> list[str]: ...

