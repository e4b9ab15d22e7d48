"""Where ``timpush redrive`` reads dead letters: a JSON Lines file or an SQS queue (``SourceLike``).

A record leaves its source only after its re-submission succeeded, and the source is settled on every
way out (error, Ctrl-C): the file is rewritten with what is left, received SQS messages are made
visible again. So a run can be interrupted and run again.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from handler.deadletter.file import FileSink
from handler.deadletter.record import parse_record
from timpush.runctl import Usage

if TYPE_CHECKING:
    from handler.deadletter.sqs import Queue

BATCH = 10  # records per re-submission (one SQS batch call)
RECEIVE_WAIT = 1  # seconds of long polling per receive
VISIBILITY = 300  # seconds a received message stays hidden while this run decides about it
UNREADABLE = "unreadable"  # the "code" of a line or message that is not a dead-letter record


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
        from handler.deadletter.sqs import Queue

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
