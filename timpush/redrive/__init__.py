"""``timpush redrive``: bring back exactly the dead letters an operator chooses.

Reads records from a file (JSON Lines) or an SQS dead-letter queue (``timpush.redrive.sources``),
re-submits the original ``raw`` of each record that passes the filters to the work queue (``sqs:URL``)
or applies it now through the real modifier (``direct``) (``timpush.redrive.targets``), and removes
from the source only what was re-submitted. The summary counts what ``timpush send`` counts
(``timpush.outcomes``), and the exit status says whether anything failed.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from handler.config import CLASS_NAMES
from handler.deadletter.record import fingerprint
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
from timpush.redrive.sources import FileSource, Letter, QueueSource, SourceLike
from timpush.redrive.targets import DirectTarget, QueueTarget, TargetLike
from timpush.runctl import (
    WITHOUT_STORE,
    WITHOUT_STORE_HELP,
    Usage,
    guarded,
    handler_logs,
    handler_runtime,
    in_flight,
    is_queue_url,
    not_a_queue,
    store_flag_problem,
)

__all__ = ["Letter", "SourceLike", "Usage", "handler_runtime", "run"]

LIST_MAX = 50  # records listed one by one in a dry run
WOULD_MOVE = "would move"
HELP = """\
environment:
  --from sqs: / --to sqs:  AWS credentials and region as boto3 reads them (AWS_PROFILE or AWS_ACCESS_KEY_ID
                           and AWS_SECRET_ACCESS_KEY; AWS_REGION unless the queue URL names it)
  --from tdmq-cmq:         TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY (and TENCENTCLOUD_SESSIONTOKEN) or
                           the tencentcloud SDK's credential chain; TENCENTCLOUD_TDMQ_ENDPOINT to override the
                           queue's regional address
  --to direct              the handler's own environment (IM_SDKAPPID and IM_SECRET_KEY or IM_SECRET_SOURCE,
                           or IM_APPS; IM_ENDPOINT / IM_REGION; DEAD_LETTER and DEAD_LETTER_ROUTES for new
                           failures), and IM_STATE_STORE, the fleet's order: without it nothing is applied
                           (exit 2) unless --without-store

counts: succeeded (sent to the work queue, or applied), superseded (a newer change was already applied),
failed (failed again: dead-lettered anew), skipped (not chosen by the filters, or not a record: left in the
source), not sent (kept in the source: refused, stopped or interrupted). Run the same command again to resume.

exit status:
  0    nothing failed and everything chosen was re-submitted
  1    something failed again, or was not sent (the source keeps it), or the run stopped (e.g. no such queue)
  2    bad arguments or configuration
  130  interrupted (Ctrl-C); the counts are exact
"""


@dataclass
class Filters:
    codes: frozenset[int] = frozenset()
    classes: frozenset[str] = frozenset()
    limit: int | None = None

    def match(self, doc: dict[str, Any] | None) -> bool:
        if doc is None:
            return False
        error = doc["error"]
        return (not self.codes or error["code"] in self.codes) and (
            not self.classes or error.get("class") in self.classes)


class Run:
    """One redrive: what it looked at and what became of each chosen record."""

    def __init__(self, source: SourceLike, target: TargetLike | None, filters: Filters, verbose: bool) -> None:
        self.source = source
        self.target = target
        self.filters = filters
        self.verbose = verbose
        self.tally = Tally()
        self.listed: list[dict[str, Any]] = []
        self.looked = 0
        self.moved_prints: set[str] = set()  # each record once per run, however often it was written

    def moved(self) -> int:
        kinds = (WOULD_MOVE,) if self.target is None else (SUCCEEDED, SUPERSEDED, FAILED)
        return sum(self.tally.total(kind) for kind in kinds)

    def count(self, letters: Sequence[Letter], outcome: str) -> None:
        for letter in letters:
            error_class = str(letter.doc["error"].get("class", "")) if letter.doc else None
            self.tally.add(letter.code, outcome, error_class=error_class)

    def go(self, progress: Progress) -> None:
        """Move what matches; the source is settled on every way out."""
        try:
            for batch in self.source.batches():
                room = None if self.filters.limit is None else self.filters.limit - self.moved()
                chosen = self._once([x for x in batch if self.filters.match(x.doc)], room)
                others = [x for x in batch if all(x is not c for c in chosen)]
                self.count(others, SKIPPED)
                self.source.leave(others)
                self.looked += len(batch)
                self._move(chosen)
                progress.advance(len(batch))
                if self.filters.limit is not None and self.moved() >= self.filters.limit:
                    return
        finally:
            self.source.finish(self.target.held if self.target else ())

    def _once(self, chosen: list[Letter], room: int | None) -> list[Letter]:
        """Up to ``room`` chosen records not already moved in this run, nor written by it (a direct target's new
        dead letter routed back to the queue being read): a dead letter is written at least once (DESIGN), so a
        copy is skipped, left in the source (a later run applies it again: already applied)."""
        produced = self.target.produced if self.target else set()
        fresh: list[Letter] = []
        for letter in chosen:
            print_ = fingerprint(letter.doc or {})
            seen = print_ in self.moved_prints or print_ in produced
            if not seen and (room is None or len(fresh) < room):
                self.moved_prints.add(print_)
                fresh.append(letter)
        return fresh

    def _move(self, chosen: list[Letter]) -> None:
        if self.target is None:
            self.source.leave(chosen)
            self.count(chosen, WOULD_MOVE)
            self.listed += [x.doc for x in chosen if x.doc][: max(LIST_MAX - len(self.listed), 0)]
            return
        for start in range(0, len(chosen), self.target.batch):
            part = chosen[start:start + self.target.batch]
            counted = False
            try:
                with in_flight("batch"):  # a Ctrl-C meanwhile is raised once the batch is settled and counted
                    outcomes = self.target.submit([x.doc for x in part if x.doc], _note)
                    self._settle(part, outcomes)
                    counted = True
            except BaseException:
                self.count(chosen[start + (len(part) if counted else 0):], NOT_SENT)
                raise

    def _settle(self, part: list[Letter], outcomes: list[str]) -> None:
        self.source.remove([x for x, kind in zip(part, outcomes, strict=True) if kind != NOT_SENT])
        for letter, kind in zip(part, outcomes, strict=True):
            self.count([letter], kind)
            if self.verbose and kind != NOT_SENT:
                _note(f"code {letter.code}: {kind}")


def _note(text: str) -> None:
    print(f"timpush redrive: {text}", file=sys.stderr)


def _list(run: Run) -> None:
    for doc in run.listed:
        request = doc.get("request")
        task_id = request.get("TaskID") if isinstance(request, dict) else None
        print(f"would move: TaskID={task_id} code={doc['error']['code']} "
              f"class={doc['error'].get('class')} failed_at={doc.get('failed_at')}")
    more = run.moved() - len(run.listed)
    if more > 0:
        print(f"... and {more} more")


# --- the command ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Move dead letters back to the work queue, or apply them now."
    parser.epilog = HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--from", dest="source", required=True, metavar="SINK",
                        help="where the dead letters are: file:PATH, sqs:QUEUE_URL or tdmq-cmq:REGION/QUEUE")
    parser.add_argument("--to", dest="target", required=True, metavar="TARGET",
                        help="sqs:QUEUE_URL (the work queue) or direct (apply now with the current environment)")
    parser.add_argument("--code", dest="codes", type=int, action="append", default=[], metavar="N",
                        help="only this error code (repeatable)")
    parser.add_argument("--class", dest="classes", action="append", default=[], metavar="C",
                        choices=sorted(CLASS_NAMES), help="only this error class (repeatable)")
    parser.add_argument("--max", dest="limit", type=_positive, metavar="N", help="move at most N")
    parser.add_argument("--dry-run", action="store_true", help="change nothing; print what would move")
    parser.add_argument("--verbose", action="store_true",
                        help="a line for every record moved, and the handler's JSON log lines (--to direct)")
    parser.add_argument(WITHOUT_STORE, action="store_true", help=WITHOUT_STORE_HELP)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    """Exit status: see HELP."""
    try:
        problem = store_flag_problem(args.target, args.without_store)
        if problem:
            raise Usage(problem)
        source = _source(args.source)
        target = None if args.dry_run else _target(args.target, source.spec, args.without_store)
    except Usage as exc:
        print(f"timpush redrive: {exc}", file=sys.stderr)
        return 2
    filters = Filters(frozenset(args.codes), frozenset(args.classes), args.limit)
    job = Run(source, target, filters, args.verbose)
    progress = Progress(source.total, "redrive")
    try:
        with handler_logs(args.verbose) if isinstance(target, DirectTarget) else contextlib.nullcontext():
            status, ending = guarded("redrive", lambda: job.go(progress))
    finally:
        progress.close()
    _report(args, job)
    if ending:
        print(f"{ending}; the source keeps everything not re-submitted: run the same command again to resume",
              file=sys.stderr)
    return status or (0 if target is None else job.tally.status())


def _report(args: argparse.Namespace, job: Run) -> None:
    if job.target is None:
        _list(job)
        where = f"nothing changed (dry run) in {args.source}"
        outcomes: Sequence[str] = (WOULD_MOVE, SKIPPED)
    else:
        where = f"from {args.source} to {args.target}"
        outcomes = OUTCOMES
    print_summary("timpush redrive", job.tally, where, outcomes)
    if job.source.total is not None and job.looked < job.source.total:
        print(f"{job.source.total - job.looked} line(s) not looked at, left in the source")


def _source(spec: str) -> SourceLike:
    scheme, _, rest = spec.partition(":")
    if scheme == "file" and rest:
        return FileSource(rest)
    if scheme == "sqs" and rest:
        if not is_queue_url(rest):
            raise not_a_queue("--from", spec)
        return QueueSource(rest)
    if scheme == "tdmq-cmq" and rest:
        from timpush.redrive.tdmq import TdmqSource  # SCF's dead letters (TDMQ for CMQ's data-flow API)

        return TdmqSource(rest)
    raise Usage(f"--from must be file:PATH, sqs:QUEUE_URL or tdmq-cmq:REGION/QUEUE, got {spec!r}")


def _target(spec: str, source_spec: str, without_store: bool) -> TargetLike:
    if spec == "direct":
        return DirectTarget(handler_runtime("--to direct", without_store), source_spec)
    if spec.startswith("sqs:") and len(spec) > 4:
        if not is_queue_url(spec[4:]):
            raise not_a_queue("--to", spec)
        if spec == source_spec:
            raise Usage("--to is the queue being read (--from); that would loop")
        return QueueTarget(spec[4:])
    raise Usage(f"--to must be sqs:QUEUE_URL or direct, got {spec!r}")
