"""The ``file:PATH`` sink: dead letters as JSON Lines."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from handler.deadletter.record import DeadLetterError


class FileSink:
    """JSON Lines, appended and flushed per record; one lock per path for concurrent writers."""

    _locks: dict[str, threading.Lock] = {}
    _locks_guard = threading.Lock()

    def __init__(self, path: str) -> None:
        self.name = f"file:{path}"
        self._path = path
        self._lock = self.lock_for(path)

    @classmethod
    def lock_for(cls, path: str) -> threading.Lock:
        """The lock every writer of ``path`` in this process holds (redrive takes it to rewrite the file)."""
        with cls._locks_guard:
            return cls._locks.setdefault(os.path.abspath(path), threading.Lock())

    def write(self, records: list[dict[str, Any]]) -> None:
        try:
            # A lone surrogate (a valid JSON escape such as "\udcff") in a parsed request cannot be encoded
            # as UTF-8; written as its escape it is still valid JSON and reads back as the same string.
            with self._lock, open(self._path, "a", encoding="utf-8", errors="backslashreplace") as out:
                for doc in records:
                    out.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
                    out.flush()
        except OSError as exc:
            raise DeadLetterError(f"{self.name}: {exc.strerror or exc}") from exc
