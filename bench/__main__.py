"""``python -m bench [NAME ...] [--write]``: run the benchmarks (all, or those named) and print their tables.

``--write`` also puts the tables, the command and the machine into ``bench/README.md`` and
``docs/benchmarks.md``, between their ``<!-- bench:results -->`` markers.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import support

BENCHMARKS = {
    "warm": "bench.bench_warm",
    "query": "bench.bench_query",
    "cold": "bench.bench_cold",
    "pacing": "bench.bench_pacing",
    "memory": "bench.bench_memory",
    "bundle": "bench.bench_bundle",
    "fleet": "bench.bench_fleet",
}
TARGETS = (support.ROOT / "bench" / "README.md", support.ROOT / "docs" / "benchmarks.md")
START, END = "<!-- bench:results -->", "<!-- /bench:results -->"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}; "
            f"load average at start {load}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run the benchmarks and print their tables.")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"{', '.join(BENCHMARKS)} (default: all of them)")
    parser.add_argument("--write", action="store_true",
                        help="also write the results into bench/README.md and docs/benchmarks.md")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    command = " ".join([".venv/bin/python -m bench", *args.names])
    header = f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command}` on {machine()}."
    print(header + "\n", flush=True)
    sections = []
    for name in names:
        started = time.monotonic()
        text, _ = importlib.import_module(BENCHMARKS[name]).run()
        text += f"\n({name}: {time.monotonic() - started:.0f} s)\n"
        print(text, flush=True)
        sections.append(text)
    if args.write:
        body = header + "\n\n" + "\n".join(sections)
        for path in TARGETS:
            write(path, body)
            print(f"written: {path.relative_to(support.ROOT)}")
    return 0


def write(path: Path, body: str) -> None:
    """Replace what is between the markers of ``path`` (the rest of the file is prose kept as it is)."""
    text = path.read_text(encoding="utf-8") if path.exists() else f"{START}\n{END}\n"
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    path.write_text(pattern.sub(lambda _: f"{START}\n{body}\n{END}", text, count=1), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
