"""``timpush send``: load modifications from a spreadsheet export (CSV) or JSON Lines.

Every row is checked by the handler's own model first; one invalid row and nothing is sent (unless
``--skip-invalid``). Then each row goes to the work queue as one message (``sqs:URL``, batches of
ten, entries SQS refuses retried a few times and then reported) or is applied now through the
direct trigger's own path (``direct``: paced, in file order, failures dead-lettered through the
configured routes). Nothing is reported as sent that was not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from handler.compat import UTC
from handler.deadletter import ISSUED_AT_ATTRIBUTE
from handler.im.codes import classify
from timpush import sendrows
from timpush.redrive import (
    DIRECT_BUDGET,
    Progress,
    Tally,
    Usage,
    handler_runtime,
    print_table,
    rows_of,
    with_progress,
)
from timpush.sendrows import InputError, Row

if TYPE_CHECKING:
    from handler.deadletter_sqs import Outgoing, Queue
    from handler.runtime import Runtime

SEND_ATTEMPTS = 3  # tries per batch entry, the first included
RETRY_PAUSE = 0.5  # seconds before trying refused entries again (doubles each time)
VALID = "valid"  # the summary's key for rows that passed validation (they have no code yet)


class Target(Protocol):
    label: str
    batch: int
    failures: list[tuple[Row, str]]  # rows not sent, and why

    def submit(self, rows: Sequence[Row], tally: Tally) -> None: ...


class QueueTarget:
    """The work queue: one message per row, the row's IssuedAt (or the time of sending) as attribute."""

    label = "sent"
    batch = 10  # one SendMessageBatch call

    def __init__(self, url: str, now: datetime) -> None:
        from handler.deadletter_sqs import Queue

        self.queue: Queue = Queue(url)
        self.failures: list[tuple[Row, str]] = []
        self._next_stamp = now

    def submit(self, rows: Sequence[Row], tally: Tally) -> None:
        pending = list(zip(rows, [self.message(row) for row in rows], strict=True))
        pause = RETRY_PAUSE
        for attempt in range(1, SEND_ATTEMPTS + 1):
            pending, why = self._try(pending)
            if not pending or attempt == SEND_ATTEMPTS:
                break
            time.sleep(pause)
            pause *= 2
        if len(rows) > len(pending):
            tally.moved[VALID] += len(rows) - len(pending)
        if pending:
            tally.kept[VALID] += len(pending)
        self.failures += [(row, f"{why} ({SEND_ATTEMPTS} attempts)") for row, _ in pending]

    def _try(self, pending: list[tuple[Row, Outgoing]]) -> tuple[list[tuple[Row, Outgoing]], str]:
        from handler.deadletter_sqs import QueueError

        try:
            refused = self.queue.send([message for _, message in pending])
        except QueueError as exc:
            return pending, f"not sent: {exc}"
        return [entry for i, entry in enumerate(pending) if i in refused], "refused by SQS"

    def message(self, row: Row) -> Outgoing:
        """One row as a message; a row without IssuedAt is stamped now, a millisecond after the one before,
        so two rows for one task keep their file order as their issue order."""
        from handler.deadletter_sqs import Outgoing, fingerprint

        body = json.dumps(row.modification, separators=(",", ":"))  # ASCII: SQS refuses some code points raw
        issued_at = row.issued_at or self._stamp()
        return Outgoing(body=body, attributes={ISSUED_AT_ATTRIBUTE: issued_at}, group=str(row.task_id),
                        dedup=fingerprint(body))

    def _stamp(self) -> str:
        when, self._next_stamp = self._next_stamp, self._next_stamp + timedelta(milliseconds=1)
        return sendrows.stamp(when)


class DirectTarget:
    """The direct trigger's own path, one row at a time in file order: paced, retried, dead-lettered."""

    label = "done"
    batch = 1  # a dead letter that cannot be written stops the run at that row

    def __init__(self, runtime: Runtime, name: str) -> None:
        self.runtime = runtime
        self.name = name
        self.failures: list[tuple[Row, str]] = []

    def submit(self, rows: Sequence[Row], tally: Tally) -> None:
        from handler.deadletter import Source
        from handler.sources import direct

        for row in rows:
            source = Source("direct", f"timpush-send:{self.name}:{row.line}")
            deadline = time.monotonic() + DIRECT_BUDGET
            with contextlib.redirect_stdout(sys.stderr):  # powertools prints EMF metrics on stdout
                result = direct.handle(row.modification, source, self.runtime, deadline)["results"][0]
            code = int(result["ErrorCode"])
            tally.moved[code] += 1
            tally.classes[code] = str(classify(code)) if code else ""
            if code:  # dead-lettered, or superseded by a newer change (DESIGN "Order")
                self.failures.append((row, f"{code} {result['ErrorInfo']} ({result['outcome'].replace('_', ' ')})"))


# --- the run ---------------------------------------------------------------------------------------------


def send(rows: Sequence[Row], target: Target, tally: Tally, progress: Progress) -> None:
    """Submit ``rows`` in the target's batches; what was not reached is counted as not sent."""
    done = 0
    try:
        for start in range(0, len(rows), target.batch):
            part = rows[start:start + target.batch]
            target.submit(part, tally)
            done += len(part)
            progress.advance(len(part))
    finally:
        if len(rows) > done:
            tally.kept[VALID] += len(rows) - done


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, metavar="FILE",
                        help="CSV (header TaskID,Type,SchedAt[,Sdkappid][,Title,Desc][,Content][,IssuedAt]) "
                             "or JSON Lines; - for stdin")
    parser.add_argument("--to", dest="target", required=True, metavar="TARGET",
                        help="sqs:QUEUE_URL (the work queue) or direct (apply now with the current environment)")
    parser.add_argument("--skip-invalid", action="store_true", help="send the valid rows, list the invalid ones")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the summary; send nothing")


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 all sent, 1 some not sent (listed), 2 invalid input or arguments, 130 Ctrl-C."""
    now = datetime.now(UTC)
    try:
        kind = _target_kind(args.target)
        runtime = handler_runtime("--to direct") if kind == "direct" and not args.dry_run else None
        rows = sendrows.read(args.source, sdkappid=_sdkappid(runtime), now=now)
    except (Usage, InputError) as exc:
        print(f"timpush send: {exc}", file=sys.stderr)
        return 2
    tally = Tally()
    invalid = [row for row in rows if not row.valid]
    _count_invalid(invalid, tally)
    refuse = bool(invalid) and not args.skip_invalid
    _list_invalid(args.source, invalid, "skipped" if args.skip_invalid else "invalid")
    valid = [row for row in rows if row.valid]
    if args.dry_run or refuse:
        if valid:
            (tally.kept if refuse else tally.moved)[VALID] += len(valid)
        _summary(tally, "would send" if args.dry_run else "sent")
        _verdict(args, len(invalid), refuse)
        return 2 if refuse else 0
    target: Target = (DirectTarget(runtime, sendrows.display_name(args.source)) if runtime is not None
                      else QueueTarget(args.target[4:], now))
    return _send_and_report(args, valid, target, tally)


def _send_and_report(args: argparse.Namespace, valid: list[Row], target: Target, tally: Tally) -> int:
    status = with_progress("send", len(valid), "rows not counted as sent were not sent",
                           lambda progress: send(valid, target, tally, progress))
    for row, why in target.failures:
        print(f"{sendrows.display_name(args.source)}:{row.line}: TaskID {row.task_id}: {why}", file=sys.stderr)
    _summary(tally, target.label)
    not_sent = tally.kept[VALID]
    print(f"{sum(tally.moved.values())} {target.label}, {not_sent} not sent, "
          f"{sum(tally.kept.values()) - not_sent} skipped as invalid; to {args.target}")
    return 1 if status == 0 and not_sent else status


def _target_kind(spec: str) -> str:
    if spec == "direct":
        return "direct"
    if spec.startswith("sqs:") and len(spec) > 4:
        return "sqs"
    raise Usage(f"--to must be sqs:QUEUE_URL or direct, got {spec!r}")


def _sdkappid(runtime: Runtime | None) -> int | None:
    """The configured SDKAppID rows are checked against: the handler's, or IM_SDKAPPID when it is set."""
    if runtime is not None:
        return runtime.settings.sdkappid
    from handler.config import ConfigError, settings

    try:
        return settings().sdkappid
    except ConfigError:
        return None  # loading a queue needs no IM identity; the handler checks the app on delivery


def _count_invalid(invalid: list[Row], tally: Tally) -> None:
    for row in invalid:
        tally.kept[row.code] += 1
        tally.classes[row.code] = str(classify(row.code))


def _list_invalid(spec: str, invalid: list[Row], word: str) -> None:
    for row in invalid:
        print(f"{sendrows.display_name(spec)}:{row.line}: {word}: {row.problem}", file=sys.stderr)


def _verdict(args: argparse.Namespace, invalid: int, refused: bool) -> None:
    if refused:
        print(f"{invalid} invalid row(s): nothing sent (fix them, or --skip-invalid to send the rest)")
    else:
        print(f"dry run: nothing sent to {args.target}")


def _summary(tally: Tally, label: str) -> None:
    total = ("total", "", sum(tally.moved.values()), sum(tally.kept.values()))
    print_table("timpush send", ("code", "class", label, "not sent"), [*rows_of(tally), total])
