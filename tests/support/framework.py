"""The pinned deploy tools in node_modules/, installed with `npm ci` when missing or at another version.

`osls` (the root package.json) is the one the project deploys with; the Serverless Framework v3
(deploy/serverless-v3/package.json) is kept only to prove that serverless.yml still packages with it.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Framework:
    directory: Path  # where its package.json and package-lock.json are
    package: str  # the npm package
    command: str  # the executable in node_modules/.bin

    def pinned(self) -> str:
        return str(json.loads((self.directory / "package.json").read_text())["devDependencies"][self.package])

    def installed(self) -> str | None:
        manifest = self.directory / "node_modules" / self.package / "package.json"
        return str(json.loads(manifest.read_text())["version"]) if manifest.is_file() else None


OSLS = Framework(ROOT, "osls", "osls")
SERVERLESS_V3 = Framework(ROOT / "deploy" / "serverless-v3", "serverless", "serverless")


def ensure_framework(framework: Framework = OSLS) -> Path:
    """The framework's executable at its pinned version, after `npm ci` when it is not installed."""
    if framework.installed() != framework.pinned():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],  # noqa: S607
                       cwd=framework.directory, check=True, timeout=600)
    return framework.directory / "node_modules" / ".bin" / framework.command
