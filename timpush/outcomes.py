"""What ``timpush send`` and ``timpush redrive`` print last: one tally, one table, one line, one exit status.

Both commands count the same five outcomes, so a cron job reads them alike: **succeeded** (accepted by
the work queue, or applied now, or already applied: this same change went through before, code 0),
**superseded** (a newer change of the task was already applied),
**failed** (dead-lettered, or refused by the server), **skipped** (invalid with ``--skip-invalid``, or
not chosen by redrive's filters) and **not sent** (never reached its target: stopped, interrupted, or
refused by SQS every time). The table and the summary line are made from the same counts, so they
cannot disagree. Exit 0 only when nothing failed and everything chosen was sent.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SUCCEEDED = "succeeded"
SUPERSEDED = "superseded"
FAILED = "failed"
SKIPPED = "skipped"
NOT_SENT = "not sent"
OUTCOMES = (SUCCEEDED, SUPERSEDED, FAILED, SKIPPED, NOT_SENT)
PROGRESS_MIN = 50  # show progress from this many rows or records (or for a queue of unknown size)
PIPE_WIDTH = 160  # columns of a table printed to a pipe or file

Code = int | str  # an error code, or a word for what has none (valid, unreadable)


@dataclass
class Tally:
    counts: Counter[tuple[Code, str]] = field(default_factory=Counter)
    classes: dict[Code, str] = field(default_factory=dict)

    def add(self, code: Code, outcome: str, count: int = 1, error_class: str | None = None) -> None:
        if count:
            self.counts[code, outcome] += count
        if error_class is not None:
            self.classes[code] = error_class

    def total(self, outcome: str) -> int:
        return sum(n for (_, kind), n in self.counts.items() if kind == outcome)

    def status(self) -> int:
        """1 when something failed or was not sent, else 0."""
        return 1 if self.total(FAILED) or self.total(NOT_SENT) else 0

    def line(self, outcomes: Sequence[str] = OUTCOMES) -> str:
        return ", ".join(f"{self.total(kind)} {kind}" for kind in outcomes)

    def rows(self, outcomes: Sequence[str]) -> list[tuple[object, ...]]:
        codes = sorted({code for code, _ in self.counts}, key=_code_order)
        rows: list[tuple[object, ...]] = [
            (code, self.classes.get(code, ""), *(self.counts[code, kind] for kind in outcomes)) for code in codes]
        return [*rows, ("total", "", *(self.total(kind) for kind in outcomes))]


def _code_order(code: Code) -> tuple[bool, int, str]:
    return (isinstance(code, str), code if isinstance(code, int) else 0, str(code))


def print_summary(title: str, tally: Tally, where: str, outcomes: Sequence[str] = OUTCOMES) -> None:
    """The table by code, then the one line a script or a person reads: the same counts."""
    print_table(title, ("code", "class", *outcomes), tally.rows(outcomes))
    print(f"{tally.line(outcomes)}; {where}")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A rich table when rich is installed, aligned plain text otherwise; a last row named total is bold.

    Text columns (class, title, type, state) are left-aligned, the others (codes, counts, times) right-aligned.
    """
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _print_plain(columns, rows)
        return
    table = Table(title=title)
    _fill(table, columns, rows)
    # a pipe has no width: wide enough for a task table, so a script never sees a cut column
    Console(soft_wrap=True, width=None if sys.stdout.isatty() else PIPE_WIDTH).print(table)


_LEFT = {"class", "title", "type", "state", "outcome", "source", "change", "fields", "superseded by"}  # text
_WRAP = {"title", "change", "fields", "superseded by"}  # long text: wraps in a narrow terminal


def _fill(table: Any, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """The rich table's columns and rows."""
    for name in columns:
        # codes, counts, states and times stay on one line; titles (and a history's ids) wrap when it is narrow
        table.add_column(name, justify="left" if name in _LEFT else "right", no_wrap=name not in _WRAP,
                         overflow="fold" if name in _WRAP else "ellipsis")  # an id too long folds, never cut
    for i, row in enumerate(rows):
        table.add_row(*(str(x) for x in row), style="bold" if i == len(rows) - 1 and row[0] == "total" else None)


def _print_plain(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Without rich: aligned plain text."""
    widths = [max(len(str(x)) for x in (name, *(row[i] for row in rows))) for i, name in enumerate(columns)]
    for row in (columns, *rows):
        print("  ".join(str(x).ljust(w) if name in _LEFT else str(x).rjust(w)
                        for x, w, name in zip(row, widths, columns, strict=True)).rstrip())


class Progress:
    """A rich progress bar on a terminal for long runs; plain lines elsewhere; nothing for short runs.

    While the bar is up, rich redirects ``sys.stderr`` above it: lines printed there (a failed row, a
    handler log line with ``--verbose``) scroll above the bar instead of through it.
    """

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
