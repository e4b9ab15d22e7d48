"""The pinned Serverless Framework in node_modules/, installed with `npm ci` when it is missing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pinned_framework() -> str:
    return str(json.loads((ROOT / "package.json").read_text())["devDependencies"]["serverless"])


def ensure_framework() -> Path:
    """node_modules/.bin/serverless at the pinned version, after `npm ci` when it is not installed."""
    installed = ROOT / "node_modules" / "serverless" / "package.json"
    if not installed.is_file() or json.loads(installed.read_text())["version"] != pinned_framework():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=True,  # noqa: S607
                       timeout=600)
    return ROOT / "node_modules" / ".bin" / "serverless"
