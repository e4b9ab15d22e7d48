"""The shape of the house, read from the code alone (``ast``; nothing is imported or run).

For ``handler/`` and ``timpush/``: each module's lines, each function's length, the import circles between
modules, and the floors of ``handler/`` (the longest chain of imports between its rooms). The structural test
(tests/unit/test_house.py) holds the limits; ``python -m tests.support.house`` prints the figures:

    python -m tests.support.house [--root DIR] [PACKAGE ...]      (default: handler timpush)

What counts (so that two people measuring get the same numbers):
- a module is every ``.py`` file under the package, a package's ``__init__.py`` included;
- an import is every ``import`` and ``from ... import`` in the module, at any depth: inside functions (lazy)
  and under ``if TYPE_CHECKING:`` too. ``from a.b import c`` names the module ``a/b/c.py`` (or the package
  ``a/b/c/``) when there is one, else ``a/b.py`` or ``a/b/__init__.py``, as Python would find it; the parent
  packages Python runs on the way are not counted as imports;
- a circle is a set of modules that reach each other through imports (a strongly connected component
  of more than one module);
- a function is every ``def`` and ``async def``, methods and nested ones included, from its ``def`` line to
  its last line (decorators not counted); p90 is the length that 90% of the functions do not exceed;
- a room of a package is a top-level module (``__init__`` too) or a subpackage; floors are the rooms on the
  longest chain of imports between rooms (a room that imports no other room is on floor 1; rooms in a
  circle share a floor).
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGES = ("handler", "timpush")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 30


@dataclass(frozen=True)
class Module:
    name: str  # dotted: handler.state.rate; a package by its own name: handler.state
    path: Path  # relative to the root
    is_package: bool
    tree: ast.Module
    lines: int


@dataclass(frozen=True)
class Function:
    where: str  # path:line:name
    lines: int


class House:
    """The modules of some packages under one root, and the imports between them."""

    def __init__(self, root: Path, packages: Sequence[str] = PACKAGES) -> None:
        self.root = root
        self.packages = tuple(packages)
        self.modules = {m.name: m for package in packages for m in _modules(root, package)}
        self.imports = {name: self._imports_of(module) for name, module in self.modules.items()}

    def of(self, package: str) -> list[Module]:
        return [m for name, m in self.modules.items() if _within(name, package)]

    def functions(self, package: str) -> list[Function]:
        return [f for m in self.of(package) for f in _functions(m)]

    def circles(self, package: str) -> list[list[str]]:
        """Each circle touching the package, its modules sorted; the circles in order of their first module."""
        found = _components(self.imports)
        return sorted(sorted(c) for c in found if len(c) > 1 and any(_within(n, package) for n in c))

    def ties(self, circle: Iterable[str]) -> list[str]:
        """The imports inside a circle, ``a -> b`` each, to say what holds it together."""
        members = set(circle)
        return [f"{self.path(a)} -> {self.path(b)}" for a in sorted(members) for b in sorted(self.imports[a] & members)]

    def path(self, name: str) -> str:
        return self.modules[name].path.as_posix()

    def floors(self, package: str) -> tuple[int, list[str]]:
        """How many floors the package's rooms stand on, and the rooms of one longest chain, top first."""
        rooms = _rooms(self.of(package), package)
        links: dict[str, set[str]] = {r: set() for r in set(rooms.values())}
        for name, room in rooms.items():
            links[room] |= {rooms[t] for t in self.imports[name] if t in rooms and rooms[t] != room}
        return _longest_chain(links)

    def _imports_of(self, module: Module) -> set[str]:
        named: list[str] = []
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                named += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, node)
                named += [f"{base}.{alias.name}" for alias in node.names]
        found = {self._deepest(name) for name in named}
        return {name for name in found if name is not None and name != module.name}

    def _deepest(self, dotted: str) -> str | None:
        """The module a dotted name lands on: itself when it is a module of the house, else its nearest parent."""
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in self.modules:
                return ".".join(parts[:end])
        return None


def _modules(root: Path, package: str) -> list[Module]:
    found = []
    for path in sorted((root / package).rglob("*.py")):
        relative = path.relative_to(root)
        parts = relative.with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        text = path.read_text(encoding="utf-8")
        found.append(Module(name, relative, is_package, ast.parse(text, str(relative)), len(text.splitlines())))
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """The module a ``from X import`` names, relative imports resolved against the importing module."""
    if not node.level:
        return node.module or ""
    here = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = here[: len(here) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _functions(module: Module) -> list[Function]:
    return [Function(f"{module.path.as_posix()}:{node.lineno}:{node.name}", node.end_lineno - node.lineno + 1)
            for node in ast.walk(module.tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None]


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components: each node with those it reaches and that reach it back."""
    reach = {node: _reachable(graph, node) for node in graph}
    found: list[set[str]] = []
    seen: set[str] = set()
    for node in sorted(graph):
        if node not in seen:
            component = {node} | {other for other in reach[node] if node in reach[other]}
            seen |= component
            found.append(component)
    return found


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    found: set[str] = set()
    todo = [start]
    while todo:
        for child in graph.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _rooms(modules: list[Module], package: str) -> dict[str, str]:
    """Each module of the package and its room: ``handler.state.rate`` lives in ``handler/state/``."""
    rooms = {}
    for module in modules:
        parts = module.path.parts
        rooms[module.name] = f"{package}/{parts[1]}/" if len(parts) > 2 else module.path.as_posix()
    return rooms


def _longest_chain(links: dict[str, set[str]]) -> tuple[int, list[str]]:
    """Rooms in a circle are one floor: the chain is taken over the circles' components."""
    component_of = {room: frozenset(c) for c in _components(links) for room in c}
    above: dict[frozenset[str], set[frozenset[str]]] = {c: set() for c in component_of.values()}
    for room, targets in links.items():
        above[component_of[room]] |= {component_of[t] for t in targets} - {component_of[room]}

    @cache
    def chain(component: frozenset[str]) -> tuple[frozenset[str], ...]:
        below = [chain(c) for c in sorted(above[component], key=sorted)]
        return (component, *max(below, key=len, default=()))

    best = max((chain(c) for c in sorted(above, key=sorted)), key=len, default=())
    return len(best), [" + ".join(sorted(c)) for c in best]


# --- the report ----------------------------------------------------------------------------------------


def p90(lengths: Sequence[int]) -> int:
    ordered = sorted(lengths)
    return ordered[int(0.9 * (len(ordered) - 1))]


def report(house: House, package: str) -> list[str]:
    modules = house.of(package)
    functions = house.functions(package)
    lengths = [f.lines for f in functions]
    longest = max(functions, key=lambda f: f.lines)
    largest = sorted(modules, key=lambda m: (-m.lines, m.name))[:3]
    lines = [f"{package}/: {len(modules)} modules, {sum(m.lines for m in modules)} lines",
             f"  functions: {len(functions)}, length median {statistics.median(lengths):g}, p90 {p90(lengths)}, "
             f"max {longest.lines} ({longest.where})",
             "  largest modules: " + ", ".join(f"{m.path.as_posix()} {m.lines}" for m in largest),
             *_over(functions, modules)]
    return lines + _structure(house, package)


def _structure(house: House, package: str) -> list[str]:
    """The circles, and for handler/ its rooms and floors."""
    circles = house.circles(package)
    lines = [f"  circles: {len(circles)}", *(f"    {len(c)} modules: " + "; ".join(house.ties(c)) for c in circles)]
    if package == "handler":
        floors, chain = house.floors(package)
        rooms = len(set(_rooms(house.of(package), package).values()))
        lines.append(f"  rooms: {rooms}, floors: {floors} ({' -> '.join(chain)})")
    return lines


def _over(functions: list[Function], modules: list[Module]) -> list[str]:
    long = [f"{f.where} {f.lines}" for f in functions if f.lines > MAX_FUNCTION_LINES]
    big = [f"{m.path.as_posix()} {m.lines}" for m in modules if m.lines > MAX_MODULE_LINES]
    return ([f"  functions over {MAX_FUNCTION_LINES} lines: " + ", ".join(long)] if long else []) + (
        [f"  modules over {MAX_MODULE_LINES} lines: " + ", ".join(big)] if big else [])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.house", description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", default=list(PACKAGES), metavar="PACKAGE")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2],
                        help="the checkout (default: the one this file is in)")
    args = parser.parse_args(argv)
    house = House(args.root, args.packages)
    for package in args.packages:
        print("\n".join(report(house, package)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
