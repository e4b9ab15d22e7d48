"""JSON as producers and callers send it: strict, and bounded in depth (DESIGN "No event crashes a trigger").

``json`` recurses once per level, so a body nested a few thousand deep raises ``RecursionError`` (not a
``ValueError``), and one a few hundred deep may parse at the top of a stack and fail deeper in it, or later
when it is written out. A fixed bound makes the answer the same everywhere: no modification is nested
anywhere near ``MAX_DEPTH`` levels, and a value within it is parsed, written and echoed safely.
This is the one reader for every trigger's text and for the operators' tools (``timpush invoke``, ``send``).
"""

from __future__ import annotations

import json
from typing import Any, Final

MAX_DEPTH: Final = 100  # arrays and objects inside one another; a modification needs about five
TOO_DEEP: Final = f"nested too deeply (more than {MAX_DEPTH} levels)"


class TooDeep(ValueError):
    """JSON nested more than ``MAX_DEPTH`` levels: refused as a whole (90104 where a code is due)."""

    def __init__(self) -> None:
        super().__init__(TOO_DEEP)


def loads(text: str) -> Any:
    """Strict JSON (no ``NaN`` or ``Infinity``) within ``MAX_DEPTH``; ``TooDeep`` or ``ValueError`` otherwise."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise TooDeep() from None
    if text.count("[") + text.count("{") > MAX_DEPTH:  # fewer brackets than that cannot nest too deep
        check_depth(value)
    return value


def check_depth(value: Any) -> None:
    """``TooDeep`` when ``value`` (parsed JSON) nests more than ``MAX_DEPTH`` levels; walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:  # containers only: a leaf costs one isinstance (this runs on every direct payload)
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise TooDeep()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
