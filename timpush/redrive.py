"""``timpush redrive``: bring back exactly the dead letters an operator chooses.

Reads records from a file (JSON Lines) or an SQS dead-letter queue, re-submits the original ``raw``
of each record that passes the filters to the work queue (``sqs:URL``) or applies it now through the
real modifier (``direct``), and removes from the source only what was re-submitted. A record leaves
its source only after its re-submission succeeded, and the source is settled on every way out
(error, Ctrl-C): the file is rewritten with what is left, received SQS messages are made visible
again. So a run can be interrupted and run again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from handler.compat import UTC
from handler.config import CLASS_NAMES
from handler.deadletter import DeadLetterError, FileSink, Source, parse_record, record, redrives_of
from handler.order_key import issue_of_record

if TYPE_CHECKING:
    from handler.deadletter_sqs import Queue
    from handler.runtime import Runtime

BATCH = 10  # records per re-submission (one SQS batch call)
RECEIVE_WAIT = 1  # seconds of long polling per receive
VISIBILITY = 300  # seconds a received message stays hidden while this run decides about it
DIRECT_BUDGET = 30.0  # seconds one record may take through the modifier (retries included)
PROGRESS_MIN = 50  # show a progress bar from this many records (or for a queue of unknown size)
LIST_MAX = 50  # records listed one by one in a dry run
PIPE_WIDTH = 160  # columns of a table printed to a pipe or file
UNREADABLE = "unreadable"  # the "code" of a line or message that is not a dead-letter record


class Usage(Exception):
    """A bad argument or configuration: exit status 2 with the message."""


# --- what is read --------------------------------------------------------------------------------


@dataclass
class Letter:
    """One line of a file or one message of a queue; ``doc`` is None when it is not a record."""

    doc: dict[str, Any] | None
    ref: Any  # the line number, or the received SQS message

    @property
    def code(self) -> int | str:
        return int(self.doc["error"]["code"]) if self.doc else UNREADABLE


class FileSource:
    """A JSON Lines file, read once; ``finish`` rewrites it atomically without the removed lines."""

    def __init__(self, path: str) -> None:
        self.spec = "file:" + os.path.abspath(path)
        self.path = path
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise Usage(f"--from file:{path}: {exc.strerror or exc}") from exc
        self._size = len(data)
        self._lines = data.splitlines(keepends=True)
        self._removed: set[int] = set()
        self.total: int | None = sum(1 for line in self._lines if line.strip())

    def batches(self) -> Iterator[list[Letter]]:
        letters = [Letter(parse_record(line.decode("utf-8", "replace")), i) for i, line in enumerate(self._lines)
                   if line.strip()]
        for start in range(0, len(letters), BATCH):
            yield letters[start:start + BATCH]

    def remove(self, letters: Sequence[Letter]) -> None:
        self._removed.update(letter.ref for letter in letters)

    def leave(self, letters: Sequence[Letter]) -> None:
        """Nothing to do: a line stays unless removed."""

    def finish(self, appended: Sequence[dict[str, Any]] = ()) -> None:
        """Rewrite with the lines left, whatever this process appended meanwhile, then ``appended``."""
        if not self._removed and not appended:
            return
        with FileSink.lock_for(self.path):
            with open(self.path, "rb") as handle:
                handle.seek(self._size)
                tail = handle.read()  # written by another writer since we read the file
            kept = [_line(line) for i, line in enumerate(self._lines) if i not in self._removed]
            extra = [(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode() for doc in appended]
            _replace(self.path, [*kept, *([_line(tail)] if tail else []), *extra])
        self._removed = set()


def _line(data: bytes) -> bytes:
    return data if data.endswith((b"\n", b"\r")) else data + b"\n"


def _replace(path: str, chunks: Sequence[bytes]) -> None:
    """Write a temporary file beside ``path`` and swap it in, so a reader sees the old or the new file."""
    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile("wb", dir=directory, prefix=".redrive-", delete=False) as out:
        try:
            out.writelines(chunks)
            out.flush()
            os.fsync(out.fileno())
            shutil.copymode(path, out.name)
        except BaseException:
            os.unlink(out.name)
            raise
    os.replace(out.name, path)


class QueueSource:
    """An SQS queue: messages are received hidden, deleted once re-submitted, released otherwise."""

    def __init__(self, url: str) -> None:
        from handler.deadletter_sqs import Queue

        self.spec = "sqs:" + url
        self.queue: Queue = Queue(url)
        self.total: int | None = None
        self._pending: dict[str, str] = {}  # message id -> receipt, received and not yet deleted
        self._seen: set[str] = set()
        self.undeleted = 0

    def batches(self) -> Iterator[list[Letter]]:
        while True:
            received = self.queue.receive(BATCH, RECEIVE_WAIT, VISIBILITY)
            fresh = [m for m in received if m.message_id not in self._seen]
            for message in received:
                self._pending[message.message_id] = message.receipt
            if not fresh:  # empty, or only messages whose hiding ran out: everything has been looked at
                return
            self._seen.update(m.message_id for m in fresh)
            yield [Letter(parse_record(m.body), m) for m in fresh]

    def remove(self, letters: Sequence[Letter]) -> None:
        receipts = [self._pending.pop(letter.ref.message_id) for letter in letters]
        self.undeleted += self.queue.delete(receipts)

    def leave(self, letters: Sequence[Letter]) -> None:
        """Released together at the end, so this run does not receive them again."""

    def finish(self, appended: Sequence[dict[str, Any]] = ()) -> None:
        receipts, self._pending = list(self._pending.values()), {}
        if receipts:
            self.queue.release(receipts)


class SourceLike(Protocol):
    spec: str
    total: int | None

    def batches(self) -> Iterator[list[Letter]]: ...
    def remove(self, letters: Sequence[Letter]) -> None: ...
    def leave(self, letters: Sequence[Letter]) -> None: ...
    def finish(self, appended: Sequence[dict[str, Any]] = ()) -> None: ...


# --- where it goes -------------------------------------------------------------------------------


class QueueTarget:
    """The work queue: each record's ``raw`` as the body, ``Redrives`` = n + 1."""

    label = "sent"
    batch = BATCH  # one SQS batch call, then the sent ones leave the source

    def __init__(self, url: str) -> None:
        from handler.deadletter_sqs import Queue

        self.queue = Queue(url)
        self.held: list[dict[str, Any]] = []
        self.produced: set[tuple[str, int]] = set()
        self.failed_again = 0
        self.not_submitted = 0

    def submit(self, docs: Sequence[dict[str, Any]]) -> list[bool]:
        from handler.deadletter_sqs import work_message

        refused = self.queue.send([work_message(doc) for doc in docs])
        self.not_submitted += len(refused)
        return [i not in refused for i in range(len(docs))]


class DirectTarget:
    """The real modifier now; new failures go to the configured routes with ``redrives`` = n + 1.

    A failure that routes back to the file being read is held and written by the file's rewrite,
    after the lines left. One that routes back to the queue being read is written at once (its
    original is deleted only after that) and remembered in ``produced``, so this run skips it.
    """

    label = "applied"
    batch = 1  # each record leaves the source as soon as it is applied, so Ctrl-C loses no progress

    def __init__(self, runtime: Runtime, source_spec: str) -> None:
        self.runtime = runtime
        self.source_spec = source_spec
        self.held: list[dict[str, Any]] = []
        self.produced: set[tuple[str, int]] = set()
        self.failed_again = 0
        self.not_submitted = 0

    def submit(self, docs: Sequence[dict[str, Any]]) -> list[bool]:
        return [self._apply(doc) for doc in docs]

    def _apply(self, doc: dict[str, Any]) -> bool:
        from handler.model import split_payload

        deadline = time.monotonic() + DIRECT_BUDGET
        source = Source("redrive", (doc.get("source") or {}).get("id"))
        # ordered by the change's own key, not by now (DESIGN "Order"); an older record has no issued_at
        issue = issue_of_record(doc, datetime.now(UTC))
        outcomes = self.runtime.modifier.apply_all(split_payload(doc["raw"]), deadline, issue)
        failures = [record(o, source, redrives=redrives_of(doc) + 1) for o in outcomes if o.failed]
        if failures:
            self.failed_again += 1
        back = [self._routes_to_source(r) for r in failures]
        hold = self.source_spec.startswith("file:")
        try:
            self.runtime.dead_letters.send([r for r, b in zip(failures, back, strict=True) if not (b and hold)])
        except DeadLetterError as exc:
            print(f"timpush redrive: kept (its new dead letter could not be written): {exc}", file=sys.stderr)
            self.not_submitted += 1
            return False
        for failure in (r for r, b in zip(failures, back, strict=True) if b):
            if hold:
                self.held.append(failure)
            self.produced.add(_identity(failure))
        return True

    def _routes_to_source(self, doc: dict[str, Any]) -> bool:
        spec = self.runtime.dead_letters.route(doc["error"]["code"], doc["error"]["class"])
        if spec.startswith("file:"):
            spec = "file:" + os.path.abspath(spec[5:])
        return spec == self.source_spec


def _identity(doc: dict[str, Any]) -> tuple[str, int]:
    return str(doc["raw"]), redrives_of(doc)


class TargetLike(Protocol):
    label: str
    batch: int
    held: list[dict[str, Any]]
    produced: set[tuple[str, int]]
    failed_again: int
    not_submitted: int  # records whose re-submission failed (they stay in the source)

    def submit(self, docs: Sequence[dict[str, Any]]) -> list[bool]: ...


# --- the run -------------------------------------------------------------------------------------


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


@dataclass
class Tally:
    moved: Counter[int | str] = field(default_factory=Counter)
    kept: Counter[int | str] = field(default_factory=Counter)
    classes: dict[int | str, str] = field(default_factory=dict)
    listed: list[dict[str, Any]] = field(default_factory=list)
    looked: int = 0

    def add(self, counter: Counter[int | str], letters: Sequence[Letter]) -> None:
        for letter in letters:
            counter[letter.code] += 1
            if letter.doc:
                self.classes[letter.code] = str(letter.doc["error"].get("class", ""))


def redrive(source: SourceLike, target: TargetLike | None, filters: Filters, tally: Tally,
            progress: Progress) -> None:
    """Move what matches; ``target`` None is a dry run. The source is settled on every way out."""
    produced = target.produced if target else set()
    try:
        for batch in source.batches():
            room = None if filters.limit is None else filters.limit - sum(tally.moved.values())
            chosen = [x for x in batch if filters.match(x.doc) and _identity(x.doc or {}) not in produced][:room]
            others = [x for x in batch if all(x is not c for c in chosen)]
            tally.add(tally.kept, others)
            source.leave(others)
            tally.looked += len(batch)
            _move(source, target, chosen, tally)
            progress.advance(len(batch))
            if filters.limit is not None and sum(tally.moved.values()) >= filters.limit:
                return
    finally:
        source.finish(target.held if target else ())


def _move(source: SourceLike, target: TargetLike | None, chosen: list[Letter], tally: Tally) -> None:
    if target is None:
        source.leave(chosen)
        tally.add(tally.moved, chosen)
        tally.listed += [x.doc for x in chosen if x.doc][: max(LIST_MAX - len(tally.listed), 0)]
        return
    for start in range(0, len(chosen), target.batch):
        part = chosen[start:start + target.batch]
        try:
            done = target.submit([x.doc for x in part if x.doc])
        except BaseException:
            tally.add(tally.kept, chosen[start:])
            raise
        moved = [x for x, ok in zip(part, done, strict=True) if ok]
        source.remove(moved)
        tally.add(tally.moved, moved)
        tally.add(tally.kept, [x for x, ok in zip(part, done, strict=True) if not ok])


# --- progress and the summary --------------------------------------------------------------------


class Progress:
    """A rich progress bar on a terminal for long runs; plain lines elsewhere; nothing for short runs."""

    PLAIN_EVERY = 100

    def __init__(self, total: int | None, label: str) -> None:
        self._label = label
        self._done = 0
        self._bar: Any = None
        self._task: Any = None
        self._plain = total is None or total >= PROGRESS_MIN
        if self._plain and sys.stderr.isatty():
            try:
                from rich.progress import Progress as Bar
            except ImportError:
                return
            self._bar = Bar(transient=True)
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)

    def advance(self, count: int) -> None:
        self._done += count
        if self._bar is not None:
            self._bar.advance(self._task, count)
        elif self._plain and self._done // self.PLAIN_EVERY != (self._done - count) // self.PLAIN_EVERY:
            print(f"timpush {self._label}: {self._done} looked at", file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def rows_of(tally: Tally) -> list[tuple[str, str, int, int]]:
    codes = sorted({*tally.moved, *tally.kept}, key=lambda c: (isinstance(c, str), c if isinstance(c, int) else 0))
    return [(str(c), tally.classes.get(c, ""), tally.moved[c], tally.kept[c]) for c in codes]


def print_summary(tally: Tally, moved_label: str, failed_again: int | None) -> None:
    total = ("total", "", sum(tally.moved.values()), sum(tally.kept.values()))
    print_table("timpush redrive", ("code", "class", moved_label, "kept"), [*rows_of(tally), total])
    if failed_again:
        print(f"{failed_again} failed again and were dead-lettered through the configured routes")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A rich table when rich is installed, aligned plain text otherwise; a last row named total is bold.

    Text columns (class, title, type, state) are left-aligned, the others (codes, counts, times) right-aligned.
    """
    left = {"class", "title", "type", "state"}
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(x)) for x in (name, *(row[i] for row in rows))) for i, name in enumerate(columns)]
        for row in (columns, *rows):
            print("  ".join(str(x).ljust(w) if name in left else str(x).rjust(w)
                            for x, w, name in zip(row, widths, columns, strict=True)).rstrip())
        return
    table = Table(title=title)
    for name in columns:
        # codes, counts, states and times stay on one line; titles wrap when the terminal is narrow
        table.add_column(name, justify="left" if name in left else "right", no_wrap=name != "title")
    for i, row in enumerate(rows):
        table.add_row(*(str(x) for x in row), style="bold" if i == len(rows) - 1 and row[0] == "total" else None)
    # a pipe has no width: wide enough for a task table, so a script never sees a cut column
    Console(soft_wrap=True, width=None if sys.stdout.isatty() else PIPE_WIDTH).print(table)


def _list(tally: Tally) -> None:
    for doc in tally.listed:
        request = doc.get("request")
        task_id = request.get("TaskID") if isinstance(request, dict) else None
        print(f"would move: TaskID={task_id} code={doc['error']['code']} "
              f"class={doc['error'].get('class')} failed_at={doc.get('failed_at')}")
    more = sum(tally.moved.values()) - len(tally.listed)
    if more > 0:
        print(f"... and {more} more")


# --- the command ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, metavar="SINK",
                        help="where the dead letters are: file:PATH or sqs:QUEUE_URL")
    parser.add_argument("--to", dest="target", required=True, metavar="TARGET",
                        help="sqs:QUEUE_URL (the work queue) or direct (apply now with the current environment)")
    parser.add_argument("--code", dest="codes", type=int, action="append", default=[], metavar="N",
                        help="only this error code (repeatable)")
    parser.add_argument("--class", dest="classes", action="append", default=[], metavar="C",
                        choices=sorted(CLASS_NAMES), help="only this error class (repeatable)")
    parser.add_argument("--max", dest="limit", type=_positive, metavar="N", help="move at most N")
    parser.add_argument("--dry-run", action="store_true", help="change nothing; print what would move")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 done, 1 a re-submission failed (the rest stays in the source), 2 usage, 130 Ctrl-C."""
    tally = Tally()
    try:
        source = _source(args.source)
        target = None if args.dry_run else _target(args.target, source.spec)
    except Usage as exc:
        print(f"timpush redrive: {exc}", file=sys.stderr)
        return 2
    filters = Filters(frozenset(args.codes), frozenset(args.classes), args.limit)
    status = with_progress("redrive", source.total, "the source keeps everything not yet re-submitted",
                           lambda progress: redrive(source, target, filters, tally, progress))
    _report(args, tally, target, source)
    return 1 if status == 0 and target is not None and target.not_submitted else status


def with_progress(command: str, total: int | None, kept: str, work: Callable[[Progress], None]) -> int:
    """Run ``work`` under a progress bar: 0, or 130 on Ctrl-C and 1 when a dead letter cannot be written,
    each said on stderr with ``kept``: where what was not done stays."""
    progress = Progress(total, command)
    try:
        work(progress)
    except KeyboardInterrupt:
        print(f"timpush {command}: interrupted; {kept}", file=sys.stderr)
        return 130
    except DeadLetterError as exc:
        print(f"timpush {command}: stopped: {exc}; {kept}", file=sys.stderr)
        return 1
    finally:
        progress.close()
    return 0


def _report(args: argparse.Namespace, tally: Tally, target: TargetLike | None, source: SourceLike) -> None:
    if target is None:
        _list(tally)
    label = "would move" if target is None else target.label
    print_summary(tally, label, target.failed_again if target else None)
    where = "nothing changed (dry run)" if target is None else f"from {args.source} to {args.target}"
    print(f"{sum(tally.moved.values())} {label}, {sum(tally.kept.values())} kept; {where}")
    if source.total is not None and tally.looked < source.total:
        print(f"{source.total - tally.looked} line(s) not looked at, left in the source")


def _source(spec: str) -> SourceLike:
    scheme, _, rest = spec.partition(":")
    if scheme == "file" and rest:
        return FileSource(rest)
    if scheme == "sqs" and rest:
        return QueueSource(rest)
    if scheme == "tdmq-cmq" and rest:
        from timpush.redrive_tdmq import TdmqSource  # SCF's dead letters (TDMQ for CMQ's data-flow API)

        return TdmqSource(rest)
    raise Usage(f"--from must be file:PATH, sqs:QUEUE_URL or tdmq-cmq:REGION/QUEUE, got {spec!r}")


def _target(spec: str, source_spec: str) -> TargetLike:
    if spec == "direct":
        return DirectTarget(handler_runtime("--to direct"), source_spec)
    if spec.startswith("sqs:") and len(spec) > 4:
        if spec == source_spec:
            raise Usage("--to is the queue being read (--from); that would loop")
        return QueueTarget(spec[4:])
    raise Usage(f"--to must be sqs:QUEUE_URL or direct, got {spec!r}")


def handler_runtime(what: str) -> Runtime:
    """The handler's runtime from the environment, or Usage naming what needed it and the variable."""
    from handler.config import ConfigError
    from handler.runtime import runtime

    try:
        return runtime()
    except ConfigError as exc:
        raise Usage(f"{what} needs the handler's environment: {exc}") from exc
