"""``timpush send``: load modifications from a spreadsheet export (CSV) or JSON.

The whole input is read and every row checked first (``timpush.send.rows``: the handler's own model, the
app included); damaged input, or one invalid row, and nothing is sent (unless ``--skip-invalid``). Then
each row goes to the work queue as one message (``sqs:URL``, batches of ten) or is applied now through
the direct trigger's own path (``direct``: paced, in file order, failures dead-lettered through the
configured routes). The counts and the exit status are those of ``timpush.outcomes``; an error that
cannot get better stops the run with the line to resume from (``--start-line``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from handler.compat import UTC
from handler.deadletter.record import ISSUED_AT_ATTRIBUTE
from handler.im.codes import classify
from timpush.outcomes import (
    FAILED,
    NOT_SENT,
    OUTCOMES,
    SKIPPED,
    SUCCEEDED,
    SUPERSEDED,
    Progress,
    Tally,
    print_summary,
)
from timpush.runctl import (
    DIRECT_BUDGET,
    WITHOUT_STORE,
    WITHOUT_STORE_HELP,
    Usage,
    guarded,
    handler_logs,
    handler_runtime,
    in_flight,
    is_queue_url,
    not_a_queue,
    send_batch,
    store_flag_problem,
)
from timpush.send import rows as sendrows
from timpush.send.apps import apps_to_check
from timpush.send.rows import InputError, Row

if TYPE_CHECKING:
    from handler.deadletter.sqs import Outgoing
    from handler.runtime import Runtime

VALID = "valid"  # the summary's code for rows that passed validation and have no result code
WOULD_SEND = "would send"
INVALID = "invalid"
Note = Callable[[str], None]
HELP = """\
input: CSV with a header (TaskID,Type,SchedAt required; Sdkappid, Title, Desc, Content, IssuedAt optional),
comma-, semicolon- or tab-separated, UTF-8; or JSON: JSON Lines, an array, pretty-printed, or
{"modifications": [...]}. A CSV that does not parse strictly (an unclosed or stray quote, a row with more
or fewer cells than the header) is refused whole. Times without seconds (2031-06-16 09:00) mean :00.

environment:
  --to sqs:    AWS credentials and region as boto3 reads them (AWS_PROFILE or AWS_ACCESS_KEY_ID and
               AWS_SECRET_ACCESS_KEY; AWS_REGION unless the queue URL names it). With IM_SDKAPPID or IM_APPS
               set, each row's app is checked here too; without them the deployed handler checks it.
  --to direct  the handler's own environment, for --dry-run too (IM_SDKAPPID and IM_SECRET_KEY or
               IM_SECRET_SOURCE, or IM_APPS; IM_ENDPOINT / IM_REGION; DEAD_LETTER, DEAD_LETTER_ROUTES), and
               IM_STATE_STORE, the fleet's order: without it nothing is sent (exit 2) unless --without-store

counts: succeeded (accepted by the work queue, or applied), superseded (a newer change was already
applied), failed (dead-lettered), skipped (invalid, with --skip-invalid), not sent.

exit status:
  0    every valid row sent and nothing failed; with --skip-invalid, invalid rows are counted as skipped,
       not failed, so a run that skipped some still exits 0 (the summary and stderr name each one)
  1    something failed or was not sent (listed by line), or the run stopped (e.g. no such queue:
       resume with --start-line)
  2    bad arguments, configuration or input (damaged file, invalid rows, every row invalid, --start-line
       past the end, --to that is not a queue URL): nothing sent
  130  interrupted (Ctrl-C): the counts are exact; resume with --start-line
"""


class Target(Protocol):
    batch: int

    def submit(self, rows: Sequence[Row], tally: Tally, note: Note) -> list[Row]: ...


class QueueTarget:
    """The work queue: one message per row, the row's IssuedAt (or the time of sending) as attribute."""

    batch = 10  # one SendMessageBatch call

    def __init__(self, url: str, now: datetime, dedup_id: str | None) -> None:
        from handler.deadletter.sqs import Queue

        self.queue = Queue(url)
        self._next_stamp = now
        # a fresh id per run lets a deliberate re-send through FIFO deduplication; a given one lets SQS
        # drop what an earlier run with the same id sent in the last 5 minutes
        self._dedup = dedup_id or uuid.uuid4().hex

    def submit(self, rows: Sequence[Row], tally: Tally, note: Note) -> list[Row]:
        """Send one batch; the rows SQS refused every time are returned (not sent)."""
        refused, why = send_batch(self.queue, [self.message(row) for row in rows])
        unsent = [row for i, row in enumerate(rows) if i in refused]
        tally.add(VALID, SUCCEEDED, len(rows) - len(unsent))
        tally.add(VALID, NOT_SENT, len(unsent))
        for row in unsent:
            note(f"{row.line}: TaskID {row.task_id}: {why}")
        return unsent

    def message(self, row: Row) -> Outgoing:
        """One row as a message; a row without IssuedAt is stamped now, a millisecond after the one before,
        so two rows for one task keep their file order as their issue order."""
        from handler.deadletter.sqs import Outgoing, fingerprint

        body = json.dumps(row.modification, separators=(",", ":"))  # ASCII: SQS refuses some code points raw
        issued_at = row.issued_at or self._stamp()
        return Outgoing(body=body, attributes={ISSUED_AT_ATTRIBUTE: issued_at}, group=str(row.task_id),
                        dedup=fingerprint(self._dedup, row.line, body))

    def _stamp(self) -> str:
        when, self._next_stamp = self._next_stamp, self._next_stamp + timedelta(milliseconds=1)
        return sendrows.stamp(when)


class DirectTarget:
    """The direct trigger's own path, one row at a time in file order: paced, retried, dead-lettered."""

    batch = 1  # a dead letter that cannot be written stops the run at that row

    def __init__(self, runtime: Runtime, name: str, verbose: bool) -> None:
        self.runtime = runtime
        self.name = name
        self.verbose = verbose
        self._issued = datetime.min.replace(tzinfo=UTC)

    def submit(self, rows: Sequence[Row], tally: Tally, note: Note) -> list[Row]:
        from handler.deadletter.record import Source
        from handler.sources import direct

        for row in rows:
            source = Source("direct", f"timpush-send:{self.name}:{row.line}")
            deadline = time.monotonic() + DIRECT_BUDGET
            # powertools prints EMF metric lines on stdout: kept for --verbose (on stderr), else dropped
            with contextlib.redirect_stdout(sys.stderr if self.verbose else io.StringIO()):
                outcomes = direct.apply(row.modification, source, self.runtime, deadline, issued=self._next_issue())
                result = direct.summary(outcomes)["results"][0]
            code = int(result["ErrorCode"])
            outcome = SUCCEEDED if code == 0 else SUPERSEDED if result["outcome"] == SUPERSEDED else FAILED
            tally.add(code, outcome, error_class=str(classify(code)) if code else "")
            if outcome == FAILED or self.verbose:
                note(f"{row.line}: TaskID {row.task_id}: {code} {result['ErrorInfo']} ({outcome})")
        return []

    def _next_issue(self) -> datetime:
        """The time of sending, a millisecond after the row before (as the queue target stamps its messages): two
        rows of one task sent within one millisecond would otherwise tie, and a tie is broken by the rows' ids,
        not by their order in the file. A row's own IssuedAt still wins."""
        self._issued = max(datetime.now(UTC), self._issued + timedelta(milliseconds=1))
        return self._issued


# --- the run ---------------------------------------------------------------------------------------------


class Sending:
    """Rows submitted in the target's batches; what was not reached is counted as not sent."""

    def __init__(self, rows: Sequence[Row], target: Target, name: str) -> None:
        self.rows = rows
        self.target = target
        self.name = name
        self.tally = Tally()
        self.unsent: list[Row] = []

    def note(self, text: str) -> None:
        print(f"{self.name}:{text}", file=sys.stderr)

    def go(self, progress: Progress) -> None:
        done = 0
        try:
            for start in range(0, len(self.rows), self.target.batch):
                part = self.rows[start:start + self.target.batch]
                with in_flight("batch"):  # a Ctrl-C meanwhile is raised once the batch is counted
                    self.unsent += self.target.submit(part, self.tally, self.note)
                    done += len(part)
                    progress.advance(len(part))
        finally:
            self.tally.add(VALID, NOT_SENT, len(self.rows) - done)
            self.unsent += self.rows[done:]

    def resume_line(self) -> int | None:
        return min((row.line for row in self.unsent), default=None)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Load modifications from CSV or JSON onto the work queue, or apply them now."
    parser.epilog = HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--from", dest="source", required=True, metavar="FILE",
                        help="CSV (header TaskID,Type,SchedAt[,Sdkappid][,Title,Desc][,Content][,IssuedAt]) "
                             "or JSON; - for stdin")
    parser.add_argument("--to", dest="target", required=True, metavar="TARGET",
                        help="sqs:QUEUE_URL (the work queue) or direct (apply now with the current environment)")
    parser.add_argument("--skip-invalid", action="store_true", help="send the valid rows, list the invalid ones")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the summary; send nothing")
    parser.add_argument("--start-line", type=_line_number, default=1, metavar="N",
                        help="send only the rows starting at line N or later (to resume a stopped run)")
    parser.add_argument("--dedup-id", metavar="ID",
                        help="FIFO queue: the deduplication id of this send (default: a fresh one each run, so a "
                             "deliberate re-send goes through); a re-run with the same ID within SQS's 5-minute "
                             "window sends nothing it already sent")
    parser.add_argument("--verbose", action="store_true",
                        help="a line for every row, and the handler's JSON log lines (--to direct)")
    parser.add_argument(WITHOUT_STORE, action="store_true", help=WITHOUT_STORE_HELP)


def _line_number(text: str) -> int:
    """argparse names the option (``argument --start-line: ...``) and exits 2."""
    value = int(text) if text.isascii() and text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a line number, 1 or more, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    """Exit status: see HELP."""
    now = datetime.now(UTC)
    try:
        runtime, rows = _read(args, now)
    except (Usage, InputError) as exc:
        print(f"timpush send: {exc}", file=sys.stderr)
        return 2
    name = sendrows.display_name(args.source)
    valid, invalid = _sort_out(rows, name, args.skip_invalid)
    if args.dry_run or not valid or (invalid and not args.skip_invalid):
        return _without_sending(args, valid, invalid)
    return _send(args, Sending(valid, _target(args, runtime, name, now), name), invalid)


def _target(args: argparse.Namespace, runtime: Runtime | None, name: str, now: datetime) -> Target:
    return (DirectTarget(runtime, name, args.verbose) if runtime is not None
            else QueueTarget(args.target[4:], now, args.dedup_id))


def _read(args: argparse.Namespace, now: datetime) -> tuple[Runtime | None, list[Row]]:
    """The runtime (--to direct) and the rows from --start-line on; a note when some apps go unchecked."""
    problem = store_flag_problem(args.target, args.without_store)
    if problem:
        raise Usage(problem)
    direct = _target_kind(args.target) == "direct"  # a dry run sends nothing: it needs no store
    runtime = handler_runtime("--to direct", args.without_store or args.dry_run) if direct else None
    apps, unchecked = apps_to_check(runtime)
    every = sendrows.read(args.source, apps=apps, now=now)
    rows = [row for row in every if row.line >= args.start_line]
    if not rows:
        raise Usage(f"--start-line {args.start_line}: past the end of {sendrows.display_name(args.source)} (its last "
                    f"row starts on line {every[-1].line}): nothing to send")
    if unchecked:
        print(f"timpush send: note: {unchecked}", file=sys.stderr)
    return runtime, rows


def _sort_out(rows: list[Row], name: str, skip_invalid: bool) -> tuple[list[Row], list[Row]]:
    """The valid rows and the invalid ones, each invalid one named on stderr."""
    invalid = [row for row in rows if not row.valid]
    for row in invalid:
        print(f"{name}:{row.line}: {'skipped' if skip_invalid else 'invalid'}: {row.problem}", file=sys.stderr)
    return [row for row in rows if row.valid], invalid


def _without_sending(args: argparse.Namespace, valid: list[Row], invalid: list[Row]) -> int:
    """A dry run, or a refusal: invalid rows without --skip-invalid, or no valid row at all (exit 2)."""
    tally = Tally()
    refused = bool(invalid) and not args.skip_invalid or not valid
    if args.dry_run:
        outcomes: Sequence[str] = (WOULD_SEND, SKIPPED if args.skip_invalid else INVALID)
        tally.add(VALID, WOULD_SEND, len(valid))
        _count_invalid(tally, invalid, outcomes[1])
    else:
        outcomes = OUTCOMES
        tally.add(VALID, NOT_SENT, len(valid))
        _count_invalid(tally, invalid, SKIPPED if args.skip_invalid else NOT_SENT)
    print_summary("timpush send", tally, f"{'dry run: nothing sent to' if args.dry_run else 'to'} {args.target}",
                  outcomes)
    if not valid:
        print("nothing to send: every row is invalid", file=sys.stderr)
    elif refused:
        print(f"{len(invalid)} invalid row(s): nothing sent (fix them, or --skip-invalid to send the rest)",
              file=sys.stderr)
    return 2 if refused else 0


def _count_invalid(tally: Tally, invalid: list[Row], outcome: str) -> None:
    for row in invalid:
        tally.add(row.code, outcome, error_class=str(classify(row.code)))


def _send(args: argparse.Namespace, sending: Sending, invalid: list[Row]) -> int:
    _count_invalid(sending.tally, invalid, SKIPPED)
    if args.dedup_id and args.target.endswith(".fifo"):
        print(f"timpush send: note: FIFO deduplication id {args.dedup_id!r}: SQS drops, without saying so, a row "
              "this id already sent in the last 5 minutes (it is counted as succeeded); leave --dedup-id out "
              "to send again on purpose", file=sys.stderr)
    progress = Progress(len(sending.rows), "send")
    direct = isinstance(sending.target, DirectTarget)
    try:
        with handler_logs(args.verbose) if direct else contextlib.nullcontext():
            status, ending = guarded("send", lambda: sending.go(progress))
    finally:
        progress.close()
    print_summary("timpush send", sending.tally, f"to {args.target}")
    line = sending.resume_line()
    if ending or line is not None:
        again = f"timpush send --from {args.source} --to {args.target} --start-line {line}"
        print(f"{ending or 'timpush send: not everything was sent'}; to resume from line {line}: {again}",
              file=sys.stderr)
    return status or sending.tally.status()


def _target_kind(spec: str) -> str:
    if spec == "direct":
        return "direct"
    if spec.startswith("sqs:") and is_queue_url(spec[4:]):
        return "sqs"
    if spec.startswith("sqs:"):
        raise not_a_queue("--to", spec)
    raise Usage(f"--to must be sqs:QUEUE_URL or direct, got {spec!r}")
