"""One line of ``timpush check``: what was checked, what it found, and the fix when it failed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    what: str
    found: str
    fix: str = ""  # empty: the check passed

    @property
    def ok(self) -> bool:
        return not self.fix

    def text(self) -> str:
        """``ok    what: found`` or ``FAIL  what: found; fix: ...``, one line (a store's address comes masked)."""
        if self.ok:
            return f"ok    {self.what}: {self.found}"
        return f"FAIL  {self.what}: {self.found}; fix: {self.fix}"


def passed(what: str, found: str) -> Line:
    return Line(what, found)


def failed(what: str, found: str, fix: str) -> Line:
    return Line(what, found, fix)
