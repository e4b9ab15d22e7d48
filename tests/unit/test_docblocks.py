"""Finding the marked command blocks of the docs (tests/support/docblocks.py)."""

from __future__ import annotations

import pytest

from tests.support.docblocks import MarkerError, blocks_in

DOC = """# Title

<!-- doc-test: first -->
```sh
echo one    # => one
echo two
```

```sh
echo not marked
```

````markdown
<!-- doc-test: example-only -->
```sh
echo shown, not run
```
````

<!-- doc-test: second needs=npx -->
```bash
npx osls --version   # => 4.3
```
"""


def test_marked_blocks_with_names_options_and_expectations() -> None:
    first, second = blocks_in(DOC, "doc.md")
    assert (first.name, first.line, first.options) == ("first", 3, {})
    assert first.script == "echo one    # => one\necho two\n"
    assert first.expected == ["one"]
    assert (second.name, second.options, second.expected) == ("second", {"needs": "npx"}, ["4.3"])


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("<!-- doc-test: lonely -->\nno block\n", "must be followed by a ```sh block"),
        ("<!-- doc-test: py -->\n```python\nprint()\n```\n", "must be followed by a ```sh block"),
        ("<!-- doc-test: open -->\n```sh\necho\n", "is not closed"),
        ("<!-- doc-test: Bad Name -->\n```sh\necho\n```\n", "malformed doc-test marker"),
    ],
)
def test_a_marker_without_a_runnable_block_is_an_error(text: str, why: str) -> None:
    with pytest.raises(MarkerError, match=why):
        blocks_in(text, "doc.md")
