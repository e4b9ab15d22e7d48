"""The pruned artifacts, run: every path loads what it needs from the zip alone, and the Lambda zip stays small.

``timpush bundle`` drops what the dependencies ship that no path loads (``bundle.UNUSED``). This runs the real
artifacts, built for this machine, in a clean interpreter of the platform's Python (``-I -S``: no site-packages,
no PYTHON* variables) whose path holds the unpacked zip and, for Lambda, what the runtime provides (boto3,
botocore): each trigger's sample event through the entry, with no store and with a Redis store (a real
redis-server), every handler module, and what each home, sink and secret source loads when configured
(tests/support/bundle_probe.py). A module pruned that a path needs fails it with ImportError.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.redis_server import RedisServer
from tests.support.im import ADMIN, APP, KEY
from timpush import bundle
from timpush.emulator import Emulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests" / "support" / "bundle_probe.py"
ZIPPED_LIMIT = 5_000_000  # bytes: the Lambda artifact with everything a deployment may use (issue 29)
ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
# What the Lambda Python runtime provides beside the function's code (boto3 and its own dependencies).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "dateutil", "six")


def unpack(artifact: Path, into: Path) -> Path:
    with zipfile.ZipFile(artifact) as archive:
        archive.extractall(into)
    return into


@pytest.fixture(scope="module")
def lambda_task(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    if ARCH is None or bundle.find_python312() is None:
        pytest.skip("needs a Lambda architecture and a Python 3.12")
    tmp = tmp_path_factory.mktemp("lambda")
    built = bundle.build(tmp / "lambda.zip", arch=ARCH)
    yield built, unpack(built, tmp / "task")


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """boto3 and its dependencies alone, as the Lambda runtime has them (links into this environment)."""
    folder = tmp_path_factory.mktemp("runtime")
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, f"{name} is a dev dependency"
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (folder / source.name).symlink_to(source)
    return folder


def probe(python: str, task: Path, extra: list[Path], platform_name: str, env: dict[str, str],
          tmp_path: Path) -> dict[str, Any]:
    clean = {"PATH": os.environ.get("PATH", ""), "PROBE_PLATFORM": platform_name, "PROBE_EVENTS": str(ROOT / "events"),
             "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN,
             "DEAD_LETTER": f"file:{tmp_path / 'dl.jsonl'}",
             "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1", "NO_PROXY": "127.0.0.1",
             **env}
    result = subprocess.run([python, "-I", "-S", "-B", str(PROBE), str(task), *map(str, extra)],  # noqa: S603
                            env=clean, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def outside(answer: dict[str, Any], *homes: Path) -> list[str]:
    """Modules loaded from anywhere but the artifact, the runtime folder and the standard library."""
    allowed = (*(str(home.resolve()) for home in homes), *answer["stdlib"], str(PROBE))
    return sorted(name for name, path in answer["modules"].items()
                  if path and not os.path.realpath(path).startswith(allowed) and not path.startswith(allowed))


def test_lambda_zip_is_at_most_5_mb_and_ships_no_pruned_part(lambda_task: tuple[Path, Path]) -> None:
    built, task = lambda_task

    assert built.stat().st_size <= ZIPPED_LIMIT
    assert not [name for name in bundle.UNUSED if (task / name).exists()]
    assert not list(task.rglob("*.pyi"))
    # kept on purpose: the asyncio client (import redis loads it), the licences and METADATA
    assert (task / "redis" / "asyncio" / "client.py").is_file()
    assert list(task.glob("redis-*.dist-info/METADATA"))


@pytest.mark.parametrize("store", ["none", "redis"])
def test_every_lambda_path_runs_from_the_pruned_zip(lambda_task: tuple[Path, Path], runtime_dir: Path,
                                                    emulator: Emulator, store: str, tmp_path: Path) -> None:
    _built, task = lambda_task
    python = bundle.find_python312()
    assert python is not None
    env = {"IM_ENDPOINT": emulator.url}
    server = RedisServer() if store == "redis" else None
    if server is not None:
        server.start()
        env.update(server.env)
    try:
        answer = probe(python, task, [runtime_dir], "lambda", env, tmp_path)
        kept = server.client().dbsize() if server is not None else None
    finally:
        if server is not None:
            server.stop()

    assert outside(answer, task, runtime_dir) == []
    loaded = answer["modules"]
    assert {"redis.cluster", "tencentcloud.ssm.v20190923.ssm_client",
            "aws_lambda_powertools.utilities.parameters.secrets"} <= set(loaded)
    assert kept is None or kept > 0  # with a Redis store, the paths ran through it (task order, send slots)
    answers = answer["answers"]
    assert "batchItemFailures" in answers["sqs-standard.json"] and "statusCode" in answers["http-api-v2.json"]
    assert answers["direct.json"]["results"] and "redriven" in answers["eventbridge-scheduled.json"]


@pytest.mark.skipif(bundle.find_python((3, 10)) is None, reason="no Python 3.10 to run the SCF artifact with")
def test_every_scf_path_runs_from_the_pruned_zip(emulator: Emulator, tmp_path: Path) -> None:
    built = bundle.build(tmp_path / "scf.zip", platform="scf")
    task = unpack(built, tmp_path / "task")
    python = bundle.find_python((3, 10))
    assert python is not None

    answer = probe(python, task, [], "scf", {"IM_ENDPOINT": emulator.url, "TENCENTCLOUD_RUNENV": "SCF"}, tmp_path)

    assert outside(answer, task) == []
    assert not [name for name in answer["modules"] if name.startswith(("boto3", "botocore"))]
    assert {"timer.json", "apigw.json", "ckafka.json", "function-url.json"} <= set(answer["answers"])
    assert built.stat().st_size <= ZIPPED_LIMIT
