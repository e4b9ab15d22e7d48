"""Build the deployment artifact without Docker: ``timpush bundle`` (Lambda) or ``--platform scf`` (Tencent SCF).

The zip holds ``handler/`` and the runtime dependencies installed from cp312 manylinux wheels for the
target architecture, plus ``.pyc`` files compiled by a Python 3.12, so nothing is compiled at cold start.
``serverless.yml`` points every function at it through ``package.artifact``.

Architecture: **arm64** by default. Graviton costs about 20% less per GB-second than x86_64 for the same
memory, and this function spends most of its time waiting (on the rate limiter and on Tencent), so the
price per second is what counts. Every runtime dependency has an aarch64 cp312 wheel: charset-normalizer
(the only compiled one, with a pure-Python fallback) ships aarch64 wheels, the rest are pure Python.
``--arch x86_64`` builds the other one; the architecture in ``serverless.yml`` must then be changed to match,
or the compiled modules are ignored on the wrong machine.

boto3/botocore are left out: the Lambda Python runtime carries them, and bundling ~80 MB of them would only
slow the cold start. The build fails if any dependency drags them in.

``--platform scf`` builds the Tencent SCF zip the same way for SCF's newest Python runtime: cp310 manylinux
x86_64 wheels (SCF's Python runtimes run on x86_64), ``.pyc`` compiled by a Python 3.10 with ``/var/user``
(SCF's code root) as their path. boto3 is left out there too: nothing on SCF uses it.
"""

from __future__ import annotations

import argparse
import glob
import importlib.metadata
import os
import re
import shutil
import subprocess  # noqa: S404  # runs pip and python3.12 with fixed argument lists, never a shell
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHES = {"arm64": "aarch64", "x86_64": "x86_64"}
# The zip's fixed timestamp: the earliest a zip can hold, so the bytes depend on the content only.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Platform:
    """What a platform's artifact must be: its Python, architectures, code root and size limit."""

    python: tuple[int, int]
    arches: tuple[str, ...]  # the first is the default
    code_root: str  # where the platform unpacks the artifact; recorded in the .pyc so tracebacks show real paths
    unzipped_limit: int  # bytes of unzipped code a function may have
    out: Path
    entry_files: tuple[tuple[str, str], ...] = ()  # (name, text) written at the artifact's top level
    # What a dependency needs on this Python only: pip evaluates environment markers against the Python running
    # it, not --python-version, so a "; python_full_version < ..." dependency must be named here.
    extra_requirements: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        return ".".join(map(str, self.python))

    @property
    def tag(self) -> str:
        return f"cpython-{self.python[0]}{self.python[1]}"


SCF_ENTRY = "\n".join(['"""SCF entry file: index.main_handler."""', "",
                       "from handler.scf.entry import main_handler", "", '__all__ = ["main_handler"]', ""])
PLATFORMS = {
    # Lambda: 250 MB unzipped (the zip itself may be larger through S3).
    "lambda": Platform((3, 12), ("arm64", "x86_64"), "/var/task", 250 * 1024 * 1024,
                       Path("build/timpush-modifier.zip")),
    # SCF: 500 MB of code per function version before compression, layers included (SCF quota limits).
    # SCF names its entry "FILE.FUNCTION" (index.main_handler by default): index.py holds handler.main_handler,
    # so the entry is a file whichever way the runtime loads it.
    "scf": Platform((3, 10), ("x86_64",), "/var/user", 500 * 1024 * 1024, Path("build/timpush-modifier-scf.zip"),
                    (("index.py", SCF_ENTRY),), ("async-timeout>=4.0.3",)),  # redis-py's below Python 3.11.3
}
DEFAULT_OUT = PLATFORMS["lambda"].out
LAMBDA_TASK_ROOT = PLATFORMS["lambda"].code_root
UNZIPPED_LIMIT = PLATFORMS["lambda"].unzipped_limit
NOT_BUNDLED = ("boto3", "botocore", "s3transfer")
# What the dependencies ship that no path of the handler loads, each a file or folder under the artifact's root.
# tests/integration/test_bundle_paths.py runs every trigger, store, sink and secret source from the pruned
# artifact in a clean interpreter: a pruned module that a path needs fails it there. Kept although unused here:
# the dist-info folders (licences, and METADATA that importlib.metadata reads: redis-py names its version to
# the server), and redis-py's asyncio client, which ``import redis`` loads.
UNUSED = (
    # powertools: the handler uses Logger, Metrics, the Tracer (when enabled), parameters (AWS secret sources)
    # and the Lambda context's type; the HTTP resolvers and the SQS batch loop are the handler's own.
    "aws_lambda_powertools/event_handler",
    *(f"aws_lambda_powertools/utilities/{name}" for name in (
        "auth_alpha", "batch", "circuit_breaker", "data_classes", "data_masking", "feature_flags", "idempotency",
        "kafka", "metadata", "parser", "serialization.py", "streaming", "validation")),
    # redis-py: the modules' commands (RedisJSON, search, ...; each imported only when called), the multi-database
    # client and its HTTP health checks, OCSP stapling (needs cryptography, not bundled), the background scheduler.
    *(f"redis/commands/{name}" for name in ("bf", "json", "search", "timeseries", "vectorset")),
    "redis/multidb", "redis/asyncio/multidb", "redis/http", "redis/asyncio/http", "redis/ocsp.py",
    "redis/background.py",
    # tencentcloud: the asyncio clients.
    "tencentcloud/common/abstract_client_async.py", "tencentcloud/common/common_client_async.py",
    "tencentcloud/common/retry_async.py", "tencentcloud/ssm/v20190923/ssm_client_async.py",
    # urllib3: Pyodide, pyOpenSSL and SOCKS support, whose libraries are not bundled; charset-normalizer's CLI.
    "urllib3/contrib/emscripten", "urllib3/contrib/pyopenssl.py", "urllib3/contrib/socks.py",
    "charset_normalizer/cli",
)
SKIP_NAMES = {"__pycache__", "node_modules", "tests", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


class BundleError(Exception):
    """The artifact cannot be built as asked; the message says why."""


class ArchitectureError(BundleError):
    """An architecture the platform does not run: a usage error (exit 2), not a failed build."""


def build(out: Path, arch: str | None = None, with_pyc: bool = True, *, root: Path = ROOT,
          platform: str = "lambda") -> Path:
    """Build the artifact at ``out`` (relative to ``root`` unless absolute) and return its path."""
    target = PLATFORMS[platform]
    arch = arch or target.arches[0]
    if arch not in target.arches:
        raise ArchitectureError(f"unknown architecture {arch!r} for {platform}; one of {', '.join(target.arches)}")
    out = out if out.is_absolute() else root / out
    with tempfile.TemporaryDirectory(prefix="timpush-bundle-") as tmp:
        stage = Path(tmp) / "task"
        _stage(stage, target, arch, root, with_pyc)
        check_size(stage, target.unzipped_limit)
        write_zip(stage, out)
    return out


def _stage(stage: Path, target: Platform, arch: str, root: Path, with_pyc: bool) -> None:
    """What the artifact holds: the dependencies, the handler, the entry files; compiled when asked."""
    install_dependencies(stage, arch, [*runtime_requirements(root), *target.extra_requirements], target.version)
    copy_package(root / "handler", stage / "handler")
    for name, text in target.entry_files:
        (stage / name).write_text(text, encoding="utf-8")
    prune(stage, arch, target.tag)
    python = _python_for(target) if with_pyc else None
    if python is not None:
        precompile(stage, python, target.code_root)


def _python_for(target: Platform) -> str | None:
    """The target's Python to compile with, or None after a warning: the artifact then ships sources only."""
    python = find_python(target.python)
    if python is None:
        _warn(f"no Python {target.version} found (python{target.version}, pyenv, "
              f"TIMPUSH_PYTHON{target.tag[-3:]}): shipping sources only; "
              "every cold start will compile the dependencies in memory")
    return python


def runtime_requirements(root: Path) -> list[str]:
    """The runtime dependencies of pyproject.toml, pinned to the versions installed here when there are.

    Pinning to the local versions makes the bundle carry what the tests ran against; a dependency that is
    not installed locally keeps its range from pyproject.toml.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # timpush runs where the package installs (3.10 too); the dev extra brings tomli there
        import tomli as tomllib
    with (root / "pyproject.toml").open("rb") as handle:
        specs: list[str] = tomllib.load(handle)["project"]["dependencies"]
    return [_pin(spec) for spec in specs]


def _pin(spec: str) -> str:
    name = re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]
    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return spec


def install_dependencies(target: Path, arch: str, requirements: Sequence[str], python: str = "3.12") -> None:
    """pip-install CPython ``python`` wheels for Linux/``arch`` into ``target``; no sdist, so nothing is built here."""
    machine = ARCHES[arch]
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
        "--target", str(target),
        # manylinux2014 (glibc 2.17) is what every dependency ships; 2_28 is also fine on the Lambda
        # python3.12 runtime (Amazon Linux 2023, glibc 2.34) and lets pip take a newer wheel if that is all.
        # SCF's images are not documented to that detail: its artifact takes manylinux2014 only.
        "--platform", f"manylinux2014_{machine}",
        *(["--platform", f"manylinux_2_28_{machine}"] if python == "3.12" else []),
        "--python-version", python, "--implementation", "cp", "--only-binary=:all:",
        # pip would compile with this interpreter (3.11): wrong magic number, so none at all here.
        "--no-compile",
        *requirements,
    ]
    result = subprocess.run(command, check=False, capture_output=True, text=True)  # noqa: S603
    if result.returncode != 0:
        raise BundleError(f"pip install failed ({result.returncode}):\n{result.stderr.strip()}")


def copy_package(source: Path, target: Path) -> None:
    """Copy the deployable package without caches, tests or stray build output."""
    if not (source / "__init__.py").is_file():
        raise BundleError(f"{source} is not a package (no __init__.py)")
    shutil.copytree(source, target, ignore=_ignore)


def _ignore(_directory: str, names: list[str]) -> set[str]:
    return {name for name in names if name in SKIP_NAMES or name.endswith((".pyc", ".pyo"))}


def prune(stage: Path, arch: str, tag: str = "cpython-312") -> None:
    """Remove what Lambda never uses and check the compiled parts fit the target."""
    shutil.rmtree(stage / "bin", ignore_errors=True)  # console scripts pip wrote for this machine
    for record in stage.glob("*.dist-info/RECORD"):
        record.unlink()  # hashes of files as pip wrote them: stale after compiling, and never read
    for cache in list(stage.rglob("__pycache__")):
        shutil.rmtree(cache)  # whatever is there was not compiled for the target interpreter
    prune_unused(stage)
    bundled = sorted(name for name in NOT_BUNDLED if (stage / name).exists())
    if bundled:
        raise BundleError(f"a dependency pulled in {', '.join(bundled)}, which the Lambda runtime provides "
                          "and nothing on SCF uses")
    _check_extensions(stage, arch, tag)


def prune_unused(stage: Path) -> list[str]:
    """Remove UNUSED and type stubs (``.pyi``: read by type checkers only); the entries that were there."""
    found = []
    for name in UNUSED:
        path = stage / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.is_file():
            path.unlink()
        else:
            continue  # another version of the dependency may not ship it
        found.append(name)
    for stub in list(stage.rglob("*.pyi")):
        stub.unlink()
    return found


def _check_extensions(stage: Path, arch: str, tag: str) -> None:
    wanted = f"{tag}-{ARCHES[arch]}-linux-gnu"
    extensions = [path for path in stage.rglob("*.so") if ".cpython-" in path.name]
    wrong = [str(path.relative_to(stage)) for path in extensions if wanted not in path.name]
    if wrong:
        raise BundleError(f"extension modules not built for {wanted}: {', '.join(sorted(wrong))}")


def find_python312() -> str | None:
    """A Python 3.12 to compile with: TIMPUSH_PYTHON312, python3.12 on PATH, or a pyenv 3.12.x."""
    return find_python((3, 12))


def find_python(version: tuple[int, int]) -> str | None:
    """A CPython ``version`` to compile with: TIMPUSH_PYTHON3xx, python3.x on PATH, or a pyenv 3.x.y."""
    for candidate in _python_candidates(version):
        if _is_python(candidate, version):
            return candidate
    return None


def _python_candidates(version: tuple[int, int]) -> Iterator[str]:
    dotted, joined = ".".join(map(str, version)), "".join(map(str, version))
    if os.environ.get(f"TIMPUSH_PYTHON{joined}"):
        yield os.environ[f"TIMPUSH_PYTHON{joined}"]
    on_path = shutil.which(f"python{dotted}")
    if on_path:
        yield on_path  # may be a pyenv shim that refuses to run when that version is not selected
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    yield from sorted(glob.glob(f"{pyenv_root}/versions/{dotted}.*/bin/python{dotted}"), reverse=True)
    yield f"/usr/bin/python{dotted}"


def _is_python312(executable: str) -> bool:
    return _is_python(executable, (3, 12))


def _is_python(executable: str, version: tuple[int, int]) -> bool:
    probe = "import sys; print(sys.implementation.name, *sys.version_info[:2])"
    try:
        result = subprocess.run(  # noqa: S603
            [executable, "-c", probe], check=False, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.split() == ["cpython", *map(str, version)]


def precompile(stage: Path, python: str, code_root: str = LAMBDA_TASK_ROOT) -> None:
    """Compile every module with the target's Python version, checked by hash instead of timestamp.

    Lambda's /var/task is read-only, so Python cannot cache what it compiles: a .pyc that it considers stale
    means compiling that module in memory at every cold start (hundreds of ms for requests and powertools).
    An ordinary .pyc records its source's mtime, and the zip's fixed timestamps (plus the unpacking) give
    the sources another mtime than the one recorded at build time, so every ordinary .pyc would be stale.
    ``unchecked-hash`` .pyc are trusted as they are, which is right for code that cannot change after
    deployment, and they depend on the content only, which keeps the build reproducible.
    """
    command = [
        python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
        "-s", str(stage), "-p", code_root,  # record /var/task/... (/var/user/...) paths, not the build folder
        str(stage),
    ]
    result = subprocess.run(command, check=False, capture_output=True, text=True)  # noqa: S603
    # compileall exits 1 when a file does not compile (e.g. a py2-only test file in a dependency):
    # those stay source-only; anything else is a real failure.
    if result.returncode not in (0, 1):
        raise BundleError(f"compileall failed ({result.returncode}):\n{result.stderr.strip()}")
    if result.returncode == 1:
        _warn(f"some files did not compile and stay source-only:\n{result.stdout.strip()}")


def check_size(stage: Path, limit: int = UNZIPPED_LIMIT) -> None:
    total = sum(path.stat().st_size for path in stage.rglob("*") if path.is_file())
    if total > limit:
        raise BundleError(f"unzipped size {total} bytes exceeds the platform's {limit}")


def write_zip(stage: Path, out: Path) -> None:
    """Zip ``stage`` reproducibly: sorted entries, fixed timestamps and permissions, no directory entries."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    files = {path.relative_to(stage).as_posix(): path for path in stage.rglob("*") if path.is_file()}
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.create_system = 3  # Unix, so the permission bits below are honoured
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--: Lambda only reads it
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    partial.replace(out)


def _warn(message: str) -> None:
    print(f"timpush bundle: WARNING: {message}", file=sys.stderr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from timpush import helptext

    helptext.describe(parser, helptext.BUNDLE)
    parser.add_argument("--platform", choices=sorted(PLATFORMS), default="lambda",
                        help="lambda (default) or scf: Tencent SCF, Python 3.10 on x86_64 (deploy/scf/serverless.yml)")
    parser.add_argument("--arch", choices=sorted(ARCHES), default=None,
                        help="Lambda architecture to build for (default arm64; must match serverless.yml); "
                             "SCF is x86_64 only")
    parser.add_argument("--no-pyc", dest="with_pyc", action="store_false",
                        help="ship sources only (cold starts then compile every module)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"the zip to write (default {DEFAULT_OUT}, or {PLATFORMS['scf'].out} for scf, "
                             "in the project)")


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 built, 1 the build failed (pip, compiling, size, writing), 2 a bad argument."""
    out = args.out.resolve() if args.out is not None else ROOT / PLATFORMS[args.platform].out  # given: from the cwd
    if problem := _out_problem(out):  # checked before minutes of pip
        print(f"timpush bundle: --out {args.out}: {problem}", file=sys.stderr)
        return 2
    try:
        path = build(out, arch=args.arch, with_pyc=args.with_pyc, platform=args.platform)
    except BundleError as exc:
        print(f"timpush bundle: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ArchitectureError) else 1
    except OSError as exc:
        print(f"timpush bundle: {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    _print_built(path)
    return 0


def _print_built(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
        count = len(archive.infolist())
    zipped = path.stat().st_size
    print(f"{path}: {zipped / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped, {count} files")


def _out_problem(out: Path) -> str | None:
    """Why the zip could not be written where asked (its directory is made here), or None."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return f"{out.parent} is not a directory"
    except OSError as exc:
        return exc.strerror or str(exc)
    return f"{out} is a directory" if out.is_dir() else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="timpush bundle", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
