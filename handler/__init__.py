"""timpush-modifier: applies modifications to Tencent Cloud IM scheduled push tasks.

``handler.lambda_handler`` is the Lambda entry point, ``handler.main_handler`` the Tencent SCF one.
Each is loaded on first access so that importing a submodule (the emulator uses ``handler.im.usersig``)
does not pull in powertools, and neither platform loads the other's entry.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "lambda_handler":
        from handler.aws.entry import lambda_handler

        return lambda_handler
    if name == "main_handler":
        from handler.scf.entry import main_handler

        return main_handler
    raise AttributeError(f"module 'handler' has no attribute {name!r}")
