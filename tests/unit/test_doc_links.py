"""Every relative link of README.md and docs/ leads somewhere: the file exists and, for a Markdown page, the
``#anchor`` is one of its headings (GitHub's slugs). Moving a section between pages cannot leave a dead link.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.docblocks import markdown_files

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\((?P<target>[^)\s#]*)(?:#(?P<anchor>[^)\s]+))?\)")
# Pages other helpers write in the same round (issue 25, 28); the lead removes each name once its page is merged.
PENDING: set[str] = set()


def slugs(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings (fenced blocks skipped)."""
    found, inside = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith(("```", "~~~")):
            inside = not inside
        elif not inside and (heading := re.match(r"#{1,6} (.+)", line)):
            found.add(re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-"))
    return found


def links(page: Path) -> list[tuple[str, str | None]]:
    text = page.read_text(encoding="utf-8")
    return [(m.group("target"), m.group("anchor")) for m in LINK.finditer(text)
            if not m.group("target").startswith(("http://", "https://", "mailto:"))]


@pytest.mark.parametrize("page", markdown_files(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_a_file_and_a_heading(page: Path) -> None:
    dead = []
    for target, anchor in links(page):
        path = (page.parent / target).resolve() if target else page
        name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        if not path.exists():
            if name not in PENDING:
                dead.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in slugs(path):
            dead.append(f"{target}#{anchor}: no such heading in {name}")
    assert not dead, f"{page.relative_to(ROOT)}: " + "; ".join(dead)
