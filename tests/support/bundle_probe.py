"""Run inside a clean interpreter whose sys.path holds only an unpacked artifact (and, for Lambda, the runtime's boto3).

Not imported by the tests: ``python -I -S bundle_probe.py TASK [RUNTIME]`` imports every handler module, runs each
trigger's path through the platform's entry (with the store ``IM_STATE_STORE`` names, when set), loads what each
configured home, sink and secret source loads, and prints one JSON object: every module loaded, with the file it
came from, and each path's answer. Standard library only, plus what the artifact carries.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
import sysconfig
from typing import Any

TASK = sys.argv[1]
RUNTIME = sys.argv[2:]  # what the platform itself provides (Lambda: boto3 and botocore)
sys.path[:0] = [TASK, *RUNTIME]
os.chdir(TASK)


class Context:
    function_name = "timpush-modifier-probe"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    aws_request_id = "probe"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:timpush-modifier-probe"

    def get_remaining_time_in_millis(self) -> int:
        return 5000


def read(name: str) -> Any:
    with open(os.path.join(os.environ["PROBE_EVENTS"], name), encoding="utf-8") as handle:
        return json.load(handle)


def lambda_paths() -> dict[str, Any]:
    import handler

    answers = {}
    for name in ("direct.json", "sqs-standard.json", "sqs-fifo.json", "http-api-v2.json", "rest-api-v1.json",
                 "function-url.json", "schedule-input.json", "eventbridge-scheduled.json"):
        answers[name] = handler.lambda_handler(read(name), Context())
    return answers


def scf_paths() -> dict[str, Any]:
    import handler

    answers = {}
    for name in sorted(os.listdir(os.path.join(os.environ["PROBE_EVENTS"], "scf"))):
        if name.endswith(".json") and "failing" not in name:
            try:
                answers[name] = handler.main_handler(read(f"scf/{name}"), Context())
            except Exception as exc:  # a trigger whose cloud is not reachable here fails late; its imports ran
                answers[name] = f"{type(exc).__name__}"
    return answers


def every_handler_module(skip: tuple[str, ...]) -> list[str]:
    import handler

    names = [info.name for info in pkgutil.walk_packages(handler.__path__, "handler.")]
    for name in names:
        if not name.startswith(skip):
            importlib.import_module(name)
    return names


def homes_and_sinks(platform: str) -> None:
    """What each configurable part loads when it is configured, without reaching a cloud."""
    import redis.cluster
    from tencentcloud.common import credential  # the CMQ sink's credentials off SCF
    from tencentcloud.ssm.v20190923 import ssm_client

    assert redis.cluster.RedisCluster  # cluster mode
    ssm_client.SsmClient(credential.Credential("id", "key"), "ap-guangzhou")  # the Tencent secret source
    if platform == "lambda":
        from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider

        SecretsProvider()
        SSMProvider()


def main() -> None:
    platform = os.environ["PROBE_PLATFORM"]
    skip = ("handler.aws", "handler.state.dynamodb", "handler.deadletter.sqs", "handler.secret_sources.aws") \
        if platform == "scf" else ()  # boto3 is on the Lambda runtime only; nothing on SCF uses it
    answers = lambda_paths() if platform == "lambda" else scf_paths()
    every_handler_module(skip)
    homes_and_sinks(platform)
    loaded = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
    stdlib = sorted({sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib")})
    print(json.dumps({"modules": loaded, "answers": answers, "stdlib": stdlib}, default=str))


if __name__ == "__main__":
    main()
