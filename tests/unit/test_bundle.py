"""timpush.bundle without the network: pip is replaced by a fake that lays out a small site-packages."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from timpush import bundle

PYPROJECT = """\
[project]
name = "fake"
version = "0"
dependencies = ["pydantic>=2.6", "not-installed-anywhere>=1.0"]
"""


def make_project(root: Path) -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    files = {
        "handler/__init__.py": "from handler.entry import lambda_handler\n",
        "handler/entry.py": "def lambda_handler(event, context):\n    return event\n",
        "handler/__pycache__/entry.cpython-311.pyc": "stale",
        "handler/tests/test_entry.py": "",
        "handler/node_modules/x/index.js": "",
        "timpush/__init__.py": "",
        "tests/unit/test_x.py": "",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def fake_pip(extension: str = "cpython-312-aarch64-linux-gnu", extra: Sequence[str] = ()) -> Callable[..., None]:
    """Stands in for install_dependencies: what pip --target would leave, wrong-version caches included."""

    def install(target: Path, arch: str, requirements: Sequence[str], python: str = "3.12") -> None:
        files = [
            "pydantic_core/__init__.py",
            f"pydantic_core/_pydantic_core.{extension}.so",
            "pydantic_core-2.0.dist-info/METADATA",
            "pydantic_core-2.0.dist-info/RECORD",
            "requests/__init__.py",
            "requests/__pycache__/__init__.cpython-311.pyc",
            "bin/normalizer",
            *extra,
        ]
        for name in files:
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x = 1\n" if name.endswith(".py") else "binary")

    return install


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(bundle, "install_dependencies", fake_pip())
    return make_project(tmp_path / "project")


def names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_zip_holds_handler_and_dependencies_only(project: Path) -> None:
    out = bundle.build(Path("build/out.zip"), with_pyc=False, root=project)

    entries = names(out)
    assert out == project / "build/out.zip"
    assert {"handler/__init__.py", "handler/entry.py", "pydantic_core/__init__.py",
            "pydantic_core-2.0.dist-info/METADATA", "requests/__init__.py"} <= set(entries)
    assert not [n for n in entries if n.startswith(("tests/", "timpush/", "bin/"))]
    assert not [n for n in entries if "/tests/" in n or "node_modules" in n or n.endswith("RECORD")]
    assert not [n for n in entries if n.endswith(".pyc")]


@pytest.mark.skipif(bundle.find_python312() is None, reason="no Python 3.12 on this machine")
def test_pyc_are_for_312_and_checked_by_nothing_but_their_hash(project: Path) -> None:
    out = bundle.build(Path("build/out.zip"), root=project)

    entries = names(out)
    assert "handler/__pycache__/entry.cpython-312.pyc" in entries
    assert "requests/__pycache__/__init__.cpython-312.pyc" in entries
    assert not [n for n in entries if n.endswith(".pyc") and ".cpython-312." not in n]
    with zipfile.ZipFile(out) as archive:
        pyc = archive.read("handler/__pycache__/entry.cpython-312.pyc")
    assert int.from_bytes(pyc[4:8], "little") == 1  # PEP 552: hash-based (bit 0), check_source off (bit 1)


@pytest.mark.skipif(bundle.find_python312() is None, reason="no Python 3.12 on this machine")
def test_pyc_record_lambda_paths(project: Path) -> None:
    out = bundle.build(Path("build/out.zip"), root=project)

    with zipfile.ZipFile(out) as archive:
        pyc = archive.read("handler/__pycache__/entry.cpython-312.pyc")
    # co_filename, as marshal stores it: plain text (3.11 cannot unmarshal 3.12 code objects)
    assert b"/var/task/handler/entry.py" in pyc
    assert str(project).encode() not in pyc


def test_zip_is_reproducible(project: Path) -> None:
    first = bundle.build(Path("build/a.zip"), with_pyc=False, root=project).read_bytes()
    (project / "handler/entry.py").touch()  # a new mtime must not change the artifact
    second = bundle.build(Path("build/b.zip"), with_pyc=False, root=project)

    assert second.read_bytes() == first
    with zipfile.ZipFile(second) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {bundle.ZIP_EPOCH}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_extension_for_the_wrong_architecture_is_refused(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "install_dependencies", fake_pip("cpython-312-x86_64-linux-gnu"))

    with pytest.raises(bundle.BundleError, match="not built for cpython-312-aarch64-linux-gnu"):
        bundle.build(Path("build/out.zip"), arch="arm64", with_pyc=False, root=project)
    assert not (project / "build/out.zip").exists()


def test_x86_64_takes_x86_64_extensions(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "install_dependencies", fake_pip("cpython-312-x86_64-linux-gnu"))

    out = bundle.build(Path("build/out.zip"), arch="x86_64", with_pyc=False, root=project)

    assert "pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so" in names(out)


def test_boto3_dragged_in_by_a_dependency_is_refused(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "install_dependencies", fake_pip(extra=["boto3/__init__.py"]))

    with pytest.raises(bundle.BundleError, match="boto3"):
        bundle.build(Path("build/out.zip"), with_pyc=False, root=project)


def test_what_no_path_loads_is_left_out(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unused = ["redis/commands/json/__init__.py", "aws_lambda_powertools/event_handler/api_gateway.py",
              "tencentcloud/common/abstract_client_async.py", "redis/typing.pyi"]
    kept = ["redis/commands/core.py", "redis/asyncio/client.py", "aws_lambda_powertools/logging/logger.py",
            "redis-8.1.0.dist-info/METADATA", "redis-8.1.0.dist-info/licenses/LICENSE"]
    monkeypatch.setattr(bundle, "install_dependencies", fake_pip(extra=[*unused, *kept]))

    entries = set(names(bundle.build(Path("build/out.zip"), with_pyc=False, root=project)))

    assert set(kept) <= entries
    assert not [n for n in entries if n.startswith(("redis/commands/json/", "aws_lambda_powertools/event_handler/"))]
    assert not [n for n in entries if n.endswith(".pyi") or n.startswith("tencentcloud/common/abstract_client_async")]


def test_unknown_architecture_is_refused(project: Path) -> None:
    with pytest.raises(bundle.BundleError, match="unknown architecture"):
        bundle.build(Path("build/out.zip"), arch="ppc64le", root=project)


def test_missing_python312_ships_sources_with_a_warning(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bundle, "find_python", lambda _version: None)

    out = bundle.build(Path("build/out.zip"), root=project)

    assert "handler/entry.py" in names(out)
    assert not [n for n in names(out) if n.endswith(".pyc")]
    assert "WARNING" in capsys.readouterr().err


def test_requirements_are_pinned_to_the_tested_versions(project: Path) -> None:
    pinned = bundle.runtime_requirements(project)

    assert pinned == [f"pydantic=={importlib.metadata.version('pydantic')}", "not-installed-anywhere>=1.0"]


def test_pip_is_asked_for_cp312_wheels_of_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(bundle.subprocess, "run", run)

    bundle.install_dependencies(tmp_path, "arm64", ["pydantic==2.0"])

    command = seen[0]
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert "manylinux2014_aarch64" in command and "--only-binary=:all:" in command
    assert command[command.index("--python-version") + 1] == "3.12"
    assert command[command.index("--implementation") + 1] == "cp"
    assert "--no-compile" in command and command[-1] == "pydantic==2.0"


def test_pip_failure_is_a_bundle_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "No matching distribution found for pydantic")

    monkeypatch.setattr(bundle.subprocess, "run", run)

    with pytest.raises(bundle.BundleError, match="No matching distribution"):
        bundle.install_dependencies(tmp_path, "arm64", ["pydantic"])


@pytest.mark.parametrize(("says", "taken"), [("cpython 3 11", False), ("pypy 3 12", False), ("cpython 3 13", False),
                                            ("cpython 3 12", True)])
def test_a_python_that_is_not_312_is_not_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, says: str,
                                               taken: bool) -> None:
    # Given TIMPUSH_PYTHON312 naming an interpreter that answers the probe as `says` (whatever runs the tests)
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\necho {says}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("TIMPUSH_PYTHON312", str(fake))
    # Then it is taken only when it is CPython 3.12
    assert bundle._is_python312(str(fake)) is taken
    assert (bundle.find_python312() == str(fake)) is taken
    assert not bundle._is_python312("/nonexistent/python3.12")


def test_command_line(project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real_build = bundle.build
    monkeypatch.setattr(bundle, "build", lambda out, arch, with_pyc, platform: real_build(
        out, arch, with_pyc, root=project, platform=platform))
    monkeypatch.chdir(project)
    parser = argparse.ArgumentParser()
    bundle.add_arguments(parser)

    code = bundle.run(parser.parse_args(["--no-pyc", "--out", "here.zip", "--arch", "x86_64"]))

    assert code == 1  # the fake pip lays out an aarch64 extension: refused for x86_64
    assert "not built for cpython-312-x86_64" in capsys.readouterr().err
    assert bundle.run(parser.parse_args(["--no-pyc", "--out", "here.zip"])) == 0
    assert (project / "here.zip").is_file()
    assert "MB zipped" in capsys.readouterr().out



# -- the Tencent SCF artifact ----------------------------------------------------------------------

SCF_EXTENSION = "cpython-310-x86_64-linux-gnu"


def test_scf_takes_cp310_x86_64_extensions_only(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "install_dependencies", fake_pip(SCF_EXTENSION))
    out = bundle.build(Path("build/scf.zip"), with_pyc=False, root=project, platform="scf")
    assert f"pydantic_core/_pydantic_core.{SCF_EXTENSION}.so" in names(out)
    with zipfile.ZipFile(out) as archive:  # SCF's entry file, index.main_handler
        assert "from handler.scf.entry import main_handler" in archive.read("index.py").decode()

    monkeypatch.setattr(bundle, "install_dependencies", fake_pip("cpython-312-x86_64-linux-gnu"))
    with pytest.raises(bundle.BundleError, match=f"not built for {SCF_EXTENSION}"):
        bundle.build(Path("build/scf.zip"), with_pyc=False, root=project, platform="scf")
    with pytest.raises(bundle.BundleError, match="unknown architecture 'arm64' for scf"):
        bundle.build(Path("build/scf.zip"), arch="arm64", with_pyc=False, root=project, platform="scf")


def test_pip_is_asked_for_cp310_manylinux2014_x86_64_wheels_for_scf(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(bundle.subprocess, "run", lambda command, **_: seen.append(command) or
                        subprocess.CompletedProcess(command, 0, "", ""))

    bundle.install_dependencies(tmp_path, "x86_64", ["pydantic==2.0"], python="3.10")

    command = seen[0]
    assert command[command.index("--python-version") + 1] == "3.10"
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"] == ["manylinux2014_x86_64"]


def test_scf_pyc_are_for_310_with_scf_paths_and_reproducible(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if bundle.find_python((3, 10)) is None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)("no Python 3.10 to compile the SCF bundle with")
    monkeypatch.setattr(bundle, "install_dependencies", fake_pip(SCF_EXTENSION))

    first = bundle.build(Path("build/a.zip"), root=project, platform="scf")
    (project / "handler/entry.py").touch()
    second = bundle.build(Path("build/b.zip"), root=project, platform="scf")

    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        pyc = archive.read("handler/__pycache__/entry.cpython-310.pyc")
        compiled = [n for n in archive.namelist() if n.endswith(".pyc")]
    assert not [n for n in compiled if ".cpython-310." not in n]
    assert int.from_bytes(pyc[4:8], "little") == 1  # unchecked hash: nothing is recompiled on SCF
    assert b"/var/user/handler/entry.py" in pyc and str(project).encode() not in pyc


def test_command_line_builds_for_scf(project: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(bundle, "install_dependencies", fake_pip(SCF_EXTENSION))
    monkeypatch.setattr(bundle, "ROOT", project)
    real_build = bundle.build
    monkeypatch.setattr(bundle, "build", lambda out, arch, with_pyc, platform: real_build(
        out, arch, with_pyc, root=project, platform=platform))
    parser = argparse.ArgumentParser()
    bundle.add_arguments(parser)

    assert bundle.run(parser.parse_args(["--platform", "scf", "--no-pyc"])) == 0
    assert (project / "build/timpush-modifier-scf.zip").is_file()
    assert "timpush-modifier-scf.zip" in capsys.readouterr().out
