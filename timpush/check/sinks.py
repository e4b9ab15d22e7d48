"""Each dead-letter sink (and the work queue), reachable, with nothing written or read.

``file:`` its folder exists and may be written; ``sqs:`` GetQueueAttributes answers (the queue exists and these
credentials reach it); ``tdmq-cmq:`` credentials are found and the data-flow address accepts a connection
(its API has no call that changes nothing, so the right to send is proven by the first dead letter).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from handler.config import ConfigError, Settings
from timpush.check.lines import Line, failed, passed

CONNECT_TIMEOUT = 3.0
REACH_FIX = "check the address, and that this machine (or the function's network) may reach it"


def sink_checks(settings: Settings) -> Iterator[Line]:
    specs = dict.fromkeys([settings.dead_letter, *settings.dead_letter_routes.values()])
    for spec in specs:
        yield _sink(f"dead letters {spec}", spec)
    if settings.work_queue:
        yield _sink(f"work queue {settings.work_queue}", settings.work_queue)


def _sink(what: str, spec: str) -> Line:
    kind, _, rest = spec.partition(":")
    if kind == "file":
        return _folder(what, rest)
    if kind == "sqs":
        return _queue(what, rest)
    if kind == "tdmq-cmq":
        return _tdmq(what, rest)
    return failed(what, "not a sink this handler writes", "file:PATH, sqs:QUEUE_URL or tdmq-cmq:REGION/QUEUE")


def _folder(what: str, path: str) -> Line:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return failed(what, f"no folder {folder}", "create the folder, or name a file in one that exists")
    if os.path.isdir(path) or not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        return failed(what, f"{path} cannot be written", "name a file this process may write")
    return passed(what, f"{folder} may be written (nothing written)")


def _queue(what: str, url: str) -> Line:
    from botocore.exceptions import BotoCoreError, ClientError

    from handler.deadletter.sqs import client_for
    from timpush.runctl import PERMANENT

    try:
        answer = client_for(url).get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return failed(what, PERMANENT.get(code, f"refused ({code})"), _queue_fix(code))
    except BotoCoreError as exc:
        code = type(exc).__name__
        return failed(what, PERMANENT.get(code, "could not be reached"), _queue_fix(code))
    arn = answer.get("Attributes", {}).get("QueueArn", "")
    return passed(what, f"reachable ({arn or 'the queue answers'}; nothing sent)")


def _queue_fix(code: str) -> str:
    if "NonExistentQueue" in code or code == "QueueDoesNotExist":
        return "create the queue, or fix its URL"
    if "Credential" in code or "Token" in code or "Signature" in code or "Client" in code:
        return "give credentials that may use the queue (AWS_PROFILE, or the function's role)"
    if "AccessDenied" in code:
        return "grant sqs:SendMessage and sqs:GetQueueAttributes on the queue (and kms:GenerateDataKey with a KMS key)"
    if code == "NoRegionError":
        return "set AWS_REGION, or give the queue's full URL"
    return REACH_FIX


def _tdmq(what: str, target: str) -> Line:
    from handler.deadletter.cmq import credentials, endpoint
    from handler.deadletter.record import parse_tdmq_target

    try:
        region, _queue_name = parse_tdmq_target(target)
        base = endpoint(region, os.environ)
        credentials(os.environ)
    except (ValueError, ConfigError) as exc:
        return failed(what, str(exc), "TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY (or the SDK's chain), and "
                                      "a tdmq-cmq:REGION/QUEUE with a known region or TENCENTCLOUD_TDMQ_ENDPOINT")
    parts = urlsplit(base)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        return failed(what, f"{base} cannot be reached ({exc.strerror or 'no answer'})", REACH_FIX)
    return passed(what, f"{base} accepts a connection; credentials found (nothing sent: the first dead letter "
                        "proves the right to send)")
