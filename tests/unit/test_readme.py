"""The README is read in five minutes: at most 12,000 characters, with the two commands a newcomer runs first.

Everything else lives in docs/ (README "Documentation"); a section that grows moves there, not here.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LIMIT = 12_000  # characters, as a reader's eye counts them (not bytes: the picture's box lines are 3 bytes each)


def test_readme_stays_within_12000_characters() -> None:
    length = len(README.read_text(encoding="utf-8"))

    assert length <= LIMIT, f"README.md has {length} characters (limit {LIMIT}): move a section into docs/"


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    quick_start = text[text.index("## Quick start"):text.index("\n## ", text.index("## Quick start") + 1)]

    assert "./dev demo" in quick_start and "./dev test" in quick_start
