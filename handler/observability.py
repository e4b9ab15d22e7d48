"""Structured logs and EMF metrics (powertools): the process's one logger and one metrics object.

Logs go to stderr so that ``timpush invoke`` keeps stdout for the return value; on Lambda both
streams land in CloudWatch Logs alike, and SCF ships both to its log service. EMF is CloudWatch's
format: on SCF (``TENCENTCLOUD_RUNENV=SCF``) the counts go out as a ``metrics`` field of the outcome's
log line instead (``on_scf``). The line each outcome leaves is written in ``handler.outcome``. Nothing here
ever receives a key or a UserSig.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

from aws_lambda_powertools import Logger, Metrics

SERVICE = "timpush-modifier"
NAMESPACE = "TimpushModifier"  # POWERTOOLS_METRICS_NAMESPACE overrides

# An invocation with nothing to count (the idle maintenance job) still flushes the cold-start metric.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service=SERVICE, stream=sys.stderr)
# An explicit namespace would beat the variable, so the default is applied only when it is unset.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE)

_LINES = logging.getLogger(SERVICE)  # the standard logger powertools' Logger writes through


def debugging() -> bool:
    """Whether debug lines are written (``POWERTOOLS_LOG_LEVEL=DEBUG``): build a debug line's fields only then.

    The same test the standard logger makes before it drops a line; this Logger has no log buffer, which would
    keep debug lines below the level (issue 29: the fields cost ~4 us of every warm modification).
    """
    return _LINES.isEnabledFor(logging.DEBUG)


RUNENV_VAR = "TENCENTCLOUD_RUNENV"  # SCF sets it to "SCF" in every function


def on_scf() -> bool:
    return os.environ.get(RUNENV_VAR) == "SCF"
