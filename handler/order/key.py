"""A change's order key (DESIGN "Order"): the task it is for, and where the change stands among the task's changes.

Issue time, then the queue's own order, then the change's id, then position within one payload: ``Stamp.key``
is that tuple as one fixed-width string, which every home of the state compares bytewise.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import cached_property
from typing import NamedTuple


class TaskKey(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    sdkappid: int
    task_id: int

    @property
    def pk(self) -> str:
        return f"task#{self.sdkappid}#{self.task_id}"


KEY_WIDTHS = (15, 40, 16, 6)  # issue ms · queue order · id digest · position: fixed widths, digits and hex only


class _StampFields(NamedTuple):
    issued_ms: int
    by: str = ""  # the change's id: ``sqs:MESSAGE_ID``, ``http:REQUEST_ID``, ...
    seq: int = 0  # the queue's own order (FIFO SequenceNumber within a message group); 0 when it has none
    pos: int = 0  # position within one payload; breaks only otherwise equal keys


class Stamp(_StampFields):
    """A change's order key (DESIGN "Order"): issue time, the queue's own order, the change's id, position.

    ``key`` is the whole key as one fixed-width string of digits and hex that compares bytewise exactly as
    the tuple ``(issued_ms, seq, id digest, pos)`` does: every home (memory, DynamoDB, Redis) stores and
    compares that string, so none compares a coarser key than another. The id enters as a digest, so a tie
    between two different changes ends the same way on every instance; ``by`` itself is kept for people.

    A NamedTuple underneath (cheaper to build at a cold start than a dataclass: handler.config), whose own
    tuple order is not the order key: ``<`` between stamps raises TypeError, as it did on the dataclass.
    """

    def __new__(cls, issued_ms: int, by: str = "", seq: int = 0, pos: int = 0) -> Stamp:
        return super().__new__(cls, issued_ms, text_id(by), seq, pos)  # an id that is not valid text, escaped

    @cached_property  # computed once per stamp: a store compares the one it keeps many times
    def key(self) -> str:
        return f"{self.issued_ms:015d}.{self.seq:040d}.{_digest(self.by)}.{self.pos:06d}"

    @classmethod
    def from_key(cls, key: str, by: str = "") -> Stamp:
        """The stamp a store kept (its key and, beside it, the id as written)."""
        issued, seq, _digest_part, pos = key.split(".")
        return cls(int(issued), by, int(seq), int(pos))

    def __lt__(self, other: object) -> bool:
        raise TypeError("stamps are ordered by their key: compare Stamp.key")

    __le__ = __gt__ = __ge__ = __lt__


def text_id(value: str) -> str:
    """An id as valid text: a lone surrogate (a JSON escape such as ``"\\udcff"`` in an event's id, which no UTF-8
    encoder takes) is escaped as ``\\udcff``, so the id can be digested, stored, logged and dead-lettered."""
    if value.isascii():
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _digest(by: str) -> str:
    return hashlib.blake2b(by.encode(), digest_size=KEY_WIDTHS[2] // 2).hexdigest() if by else "0" * KEY_WIDTHS[2]


class _IssueFields(NamedTuple):  # not a dataclass: cheaper to build at a cold start (handler.config)
    at: datetime
    by: str = ""
    caller_waiting: bool = False  # someone waits on the answer (HTTP): may reserve further ahead in the budget
    seq: int = 0  # the queue's own order (FIFO SequenceNumber), 0 when none
    pos: int = 0  # the position of the payload's first entry: 0, or a redriven entry's own (it travels alone)
    source: str = ""  # the trigger it came through, where ``by`` names another (a redriven change keeps its id)


class Issue(_IssueFields):
    """A modification's issue time as its trigger knows it, where it came from, and its place in the queue."""

    __slots__ = ()

    def __new__(cls, at: datetime, by: str = "", caller_waiting: bool = False, seq: int = 0, pos: int = 0,
                source: str = "") -> Issue:
        return super().__new__(cls, at, text_id(by), caller_waiting, seq, pos, source)  # escaped, as Stamp's

    @property
    def kind(self) -> str:
        """The source a task's history names (``sqs``, ``http``, ``direct``, ``redrive``, ``scf``, ...)."""
        return self.source or self.by.partition(":")[0] or "direct"

    def stamp(self, at: datetime | None = None, pos: int = 0) -> Stamp:
        return Stamp(round((at or self.at).timestamp() * 1000), self.by, self.seq, pos)

    def entry(self, index: int) -> Issue:
        """The issue of a payload's entry ``index``: the same change, one position further."""
        return self._replace(pos=self.pos + index) if index else self
