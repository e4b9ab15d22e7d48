"""The two Python 3.11 names the package uses, on Python 3.10 too (SCF's newest runtime).

On 3.11+ they are the standard library's own; on 3.10 ``StrEnum`` behaves the same for what we use:
``str()``, ``format()`` and ``==`` give the value.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from datetime import UTC
    from enum import StrEnum
else:
    from datetime import timezone
    from enum import Enum

    UTC = timezone.utc

    class StrEnum(str, Enum):
        """``enum.StrEnum`` of 3.11: members are strings, and print and format as their value."""

        def __str__(self) -> str:
            return str.__str__(self)

        def __format__(self, format_spec: str) -> str:
            return str.__format__(self, format_spec)

__all__ = ["UTC", "StrEnum"]
