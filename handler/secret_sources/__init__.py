"""Back ends for IM_SECRET_SOURCE, one module per store.

Each back-end module imports its cloud SDK at the top, so ``handler.secrets`` imports a module only
when its source is configured: a cold start pays for boto3 or for the tencentcloud SDK, never both.
This package itself imports nothing heavy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

Fetch = Callable[[bool], str | bytes]
"""Fetch the secret's raw value; ``True`` bypasses the cache (rotation)."""

DETAIL_LIMIT = 200  # characters of the store's own error message kept for the log


class FetchFailed(Exception):
    """A store could not produce the secret. Carries the store's error code, never a value."""

    def __init__(self, code: str, detail: str = "", *, missing: bool = False) -> None:
        self.code = code
        self.detail = " ".join(detail.split())[:DETAIL_LIMIT]
        self.missing = missing
        super().__init__(f"{code}: {self.detail}" if self.detail else code)


def keep_values_out_of_logs(logger_name: str) -> None:
    """Cap an SDK logger at INFO: at DEBUG it writes whole response bodies, which hold the secret."""
    sdk_logger = logging.getLogger(logger_name)
    sdk_logger.setLevel(max(sdk_logger.level, logging.INFO))
