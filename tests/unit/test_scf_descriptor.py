"""deploy/scf/serverless.yml against the inputs the Serverless Cloud Framework's ``scf`` component documents
(serverless-components/tencent-scf, docs/configure.md: the full configuration and its parameter tables; the
Function URL trigger ``http`` as serverless-tencent/tencent-component-toolkit src/modules/triggers/http.ts
reads it: name, qualifier, authType NONE|CAM, netConfig.enableIntranet/enableExtranet (both off by default),
corsConfig).

Nothing here deploys: the shape is checked, so a typo (``memorysize``) or an input the component would
ignore fails here rather than silently on ``scf deploy``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import handler
import handler.scf.entry
from handler.config import CLASS_NAMES
from handler.deadletter.record import parse_tdmq_target
from tests.support.scf import ROOT
from timpush import bundle

DESCRIPTOR = ROOT / "deploy" / "scf" / "serverless.yml"
TOP_LEVEL = {"org", "app", "stage", "component", "name", "inputs"}
INPUTS = {"name", "namespace", "role", "enableRoleAuth", "src", "handler", "runtime", "region", "description",
          "memorySize", "timeout", "initTimeout", "eip", "publicAccess", "environment", "vpcConfig", "cfs",
          "deadLetter", "layers", "cls", "asyncRunEnable", "tags", "events"}
SRC = {"src", "exclude", "bucket", "object"}
# per trigger: (documented parameters, required parameters)
TRIGGERS: dict[str, tuple[set[str], set[str]]] = {
    "timer": ({"name", "qualifier", "cronExpression", "argument", "enable"}, {"cronExpression"}),
    "apigw": ({"serviceName", "serviceId", "protocols", "netTypes", "description", "environment", "endpoints"},
              {"endpoints"}),
    "http": ({"name", "qualifier", "authType", "netConfig", "corsConfig"}, set()),
    "ckafka": ({"name", "qualifier", "topic", "maxMsgNum", "offset", "retry", "timeout", "enable"},
               {"name", "topic", "maxMsgNum", "offset", "retry"}),
    "cmq": ({"name", "qualifier", "filterType", "filterKey", "enable"}, {"name"}),
    "cos": ({"qualifier", "bucket", "filter", "events", "enable"}, {"bucket", "filter", "events"}),
    "cls": ({"qualifier", "topicId", "maxWait", "enable"}, {"topicId"}),
    "mps": ({"qualifier", "type", "enable"}, {"type"}),
}
ENDPOINT = {"path", "method", "apiId", "apiName", "description", "enableCORS", "responseType", "serviceTimeout",
            "param", "function", "usagePlan", "auth", "isBase64Encoded", "isBase64Trigger",
            "base64EncodedTriggerRules"}
PARAM = {"name", "position", "required", "type", "defaultValue", "desc"}
NET_CONFIG = {"enableIntranet", "enableExtranet"}
VPC = {"vpcId", "subnetId"}
# the role's policies, named in the descriptor's header and in docs/deploy-scf.md alike
POLICIES = ("timpush-modifier-ssm", "QcloudTDMQFullAccess", "QcloudCKafkaFullAccess")
ENV_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{1,63}")  # SCF: a letter first; letters, digits, _; 2-64 bytes


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DESCRIPTOR.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def inputs(doc: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = doc["inputs"]
    return found


def triggers(inputs: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for event in inputs["events"]:
        ((kind, body),) = event.items()
        found.append((kind, body["parameters"]))
    return found


def trigger(inputs: dict[str, Any], kind: str) -> dict[str, Any]:
    (parameters,) = [p for k, p in triggers(inputs) if k == kind]
    return parameters


def test_component_and_documented_inputs_only(doc: dict[str, Any], inputs: dict[str, Any]) -> None:
    assert doc["component"] == "scf" and doc["name"]
    assert set(doc) <= TOP_LEVEL
    assert set(inputs) <= INPUTS
    assert {"src", "handler", "runtime", "region", "memorySize", "timeout", "environment", "events"} <= set(inputs)
    assert set(inputs["src"]) <= SRC and "src" in inputs["src"]


def test_function_runs_main_handler_on_python_310(inputs: dict[str, Any]) -> None:
    assert inputs["runtime"] == "Python3.10"
    # SCF's FILE.FUNCTION: the bundle's entry file, which must give handler.main_handler
    module, _, function = inputs["handler"].partition(".")
    (text,) = [text for name, text in bundle.PLATFORMS["scf"].entry_files if name == f"{module}.py"]
    namespace: dict[str, Any] = {}
    exec(compile(text, f"{module}.py", "exec"), namespace)  # noqa: S102  (our own entry file)
    assert namespace[function] is handler.main_handler
    assert re.fullmatch(r"[a-z]{2}-[a-z]+(-[0-9])?", inputs["region"])
    assert (Path(DESCRIPTOR.parent / inputs["src"]["src"]).resolve()) == ROOT / "build" / "scf"


def test_memory_and_timeout_are_allowed_values(inputs: dict[str, Any]) -> None:
    memory, timeout = inputs["memorySize"], inputs["timeout"]
    assert memory == 64 or (memory % 128 == 0 and 128 <= memory <= 3072)
    assert 1 <= timeout <= 900 and 1 <= inputs.get("initTimeout", 3) <= 30


def test_environment_configures_the_handler_for_scf(inputs: dict[str, Any]) -> None:
    variables = inputs["environment"]["variables"]
    assert all(ENV_NAME.fullmatch(name) and isinstance(value, str) for name, value in variables.items())
    scheme, _, target = variables["DEAD_LETTER"].partition(":")
    assert scheme == "tdmq-cmq" and parse_tdmq_target(target)[0] == inputs["region"]
    assert variables["IM_SECRET_SOURCE"].startswith("tencent-ssm:") and "IM_SECRET_KEY" not in variables
    assert float(variables["IM_RATE_LIMIT"]) == 5  # the fleet's, shared through the store
    assert variables["IM_STATE_STORE"] == "${env:IM_STATE_STORE}"  # a Redis in the function's VPC
    assert set(variables.get("DEAD_LETTER_ROUTES", {})) <= CLASS_NAMES


def test_triggers_are_timers_a_function_url_and_ckafka_with_documented_parameters(inputs: dict[str, Any]) -> None:
    found = triggers(inputs)
    assert sorted(kind for kind, _ in found) == ["ckafka", "http", "timer", "timer"]  # no apigw: retired (583/107631)
    for kind, parameters in found:
        documented, required = TRIGGERS[kind]
        assert set(parameters) <= documented, kind
        assert required <= set(parameters), kind
    ckafka = trigger(inputs, "ckafka")
    assert ckafka["offset"] == "latest" and ckafka["retry"] >= 1 and 1 <= ckafka["maxMsgNum"] <= 10_000


def test_the_function_url_is_behind_cam_never_open(inputs: dict[str, Any]) -> None:
    url = trigger(inputs, "http")
    assert url["authType"] == "CAM"
    assert set(url["netConfig"]) <= NET_CONFIG and any(url["netConfig"].values())  # both off: unreachable


def test_the_maintenance_timer_fires_every_10_minutes(inputs: dict[str, Any]) -> None:
    timers = [p for kind, p in triggers(inputs) if kind == "timer"]
    (maintenance,) = [t for t in timers if t.get("argument") == handler.scf.entry.MAINTENANCE]
    # SCF's cron: second minute hour day month week year
    assert maintenance["cronExpression"].split() == ["0", "*/10", "*", "*", "*", "*", "*"]
    assert maintenance["enable"] is True


def test_the_function_runs_in_the_ckafka_vpc_with_public_egress(inputs: dict[str, Any]) -> None:
    assert set(inputs["vpcConfig"]) == VPC
    assert all(re.fullmatch(r"\$\{env:[A-Z_]+\}", value) for value in inputs["vpcConfig"].values())
    assert inputs["publicAccess"] is True  # the IM API, SSM and TDMQ's public addresses from inside the VPC


def test_the_roles_policies_are_named_in_the_descriptor_and_the_guide(inputs: dict[str, Any]) -> None:
    assert inputs["role"]
    header = DESCRIPTOR.read_text(encoding="utf-8").split("\napp:")[0]
    guide = (ROOT / "docs" / "deploy-scf.md").read_text(encoding="utf-8")
    assert all(policy in header and policy in guide for policy in POLICIES)
