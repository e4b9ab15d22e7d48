"""Command blocks in the Markdown docs that the tests run (docs/doc-tests.md says how to mark one).

A block is marked by an HTML comment on the line right before its fence, which Markdown does not show:

    <!-- doc-test: NAME -->            or    <!-- doc-test: NAME needs=npx -->
    ```sh
    ./dev timpush invoke events/direct.json   # => "succeeded": 2
    ```

``# => TEXT`` at the end of a line says the block's output (stdout and stderr) contains TEXT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MARKER = re.compile(r"^<!--\s*doc-test:\s*(?P<name>[a-z0-9-]+)(?P<options>(?:\s+\w+=\S+)*)\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<lang>\w*)\s*$")
EXPECT = re.compile(r"#\s*=>\s*(?P<text>.+?)\s*$")
DOCS = ("README.md", "docs")


@dataclass(frozen=True)
class Block:
    name: str
    path: str  # relative to the repository
    line: int  # of the marker
    script: str
    options: dict[str, str]

    @property
    def expected(self) -> list[str]:
        """The ``# => TEXT`` expectations, in order."""
        return [m.group("text") for m in map(EXPECT.search, self.script.splitlines()) if m]


class MarkerError(Exception):
    """A marker that is not followed by a fenced shell block, or a name used twice."""


def markdown_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for entry in DOCS:
        path = root / entry
        files += sorted(path.rglob("*.md")) if path.is_dir() else [path]
    return files


def blocks(root: Path) -> list[Block]:
    found = [b for path in markdown_files(root) for b in blocks_in(path.read_text(encoding="utf-8"),
                                                                    str(path.relative_to(root)))]
    names = [b.name for b in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise MarkerError(f"doc-test name used more than once: {', '.join(repeated)}")
    return found


def blocks_in(text: str, path: str) -> list[Block]:
    """The marked blocks of one document; a marker shown inside a fenced block (an example) is not one."""
    lines = text.split("\n")
    out = []
    inside: str | None = None  # the fence of the block being skipped
    for number, line in enumerate(lines, start=1):
        fence = FENCE.match(line.strip())
        if inside is not None:
            inside = None if line.strip() == inside else inside
        elif fence:
            inside = fence.group("fence")
        elif marker := MARKER.match(line.strip()):
            out.append(_block(lines, number, marker, path))
        elif "doc-test" in line and line.lstrip().startswith("<!--"):
            raise MarkerError(f"{path}:{number}: malformed doc-test marker: {line.strip()}")
    return out


def _block(lines: list[str], number: int, marker: re.Match[str], path: str) -> Block:
    fence = FENCE.match(lines[number].strip()) if number < len(lines) else None
    if fence is None or fence.group("lang") not in ("sh", "bash", "shell"):
        raise MarkerError(f"{path}:{number}: a doc-test marker must be followed by a ```sh block")
    body = []
    for line in lines[number + 1:]:
        if line.strip() == fence.group("fence"):
            options = dict(option.split("=", 1) for option in marker.group("options").split())
            return Block(marker.group("name"), path, number, "\n".join(body) + "\n", options)
        body.append(line)
    raise MarkerError(f"{path}:{number}: the block after the doc-test marker is not closed")
