"""The house as issue 22 leaves it, for handler/ and timpush/: no import circle (lazy imports and those under
TYPE_CHECKING included), no module over 400 lines, no function over 30 lines. Read from the code with ``ast``;
``python -m tests.support.house`` prints the same measures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.house import MAX_FUNCTION_LINES, MAX_MODULE_LINES, PACKAGES, House

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def house() -> House:
    return House(ROOT, PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle(house: House, package: str) -> None:
    circles = house.circles(package)
    assert not circles, f"{package}/ has {len(circles)} import circle(s): " + " | ".join(
        "; ".join(house.ties(circle)) for circle in circles)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_over_the_limit(house: House, package: str) -> None:
    big = [f"{m.path.as_posix()} ({m.lines})" for m in house.of(package) if m.lines > MAX_MODULE_LINES]
    assert not big, f"{package}/ modules over {MAX_MODULE_LINES} lines: {', '.join(big)}"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_over_the_limit(house: House, package: str) -> None:
    long = [f"{f.where} ({f.lines})" for f in house.functions(package) if f.lines > MAX_FUNCTION_LINES]
    assert not long, f"{package}/ functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_the_measure_finds_what_it_should(tmp_path: Path) -> None:
    """The rules themselves, on a small made-up package: a lazy import and one under TYPE_CHECKING close
    circles, ``from pkg.sub import mod`` lands on the submodule, a relative import resolves, an import of
    a name from a package lands on its __init__."""
    files = {
        "pkg/__init__.py": "from pkg.a import A\n",
        "pkg/a.py": "def f():\n    from pkg.sub import b\n    return b\nA = 1\n",
        "pkg/sub/__init__.py": "X = 1\n",
        "pkg/sub/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\n",
        "pkg/sub/c.py": "from ..a import A\nC = A\n",
        "pkg/sub/d.py": "from pkg.sub import X\n" + "def long():\n" + "    pass\n" * 31,
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    made = House(tmp_path, ["pkg"])
    assert made.imports["pkg.a"] == {"pkg.sub.b"}
    assert made.imports["pkg.sub.b"] == {"pkg.sub.c"}
    assert made.imports["pkg.sub.c"] == {"pkg.a"}
    assert made.imports["pkg.sub.d"] == {"pkg.sub"}
    assert made.circles("pkg") == [["pkg.a", "pkg.sub.b", "pkg.sub.c"]]
    assert [(f.where, f.lines) for f in made.functions("pkg") if f.lines > MAX_FUNCTION_LINES] == [
        ("pkg/sub/d.py:2:long", 32)]
    assert made.floors("pkg") == (2, ["pkg/__init__.py", "pkg/a.py + pkg/sub/"])  # a circle is one floor
