"""The deployment, checked without AWS: the real bundle, `osls package`, cfn-lint, and the template.

Needs Node.js and npm (it runs `npm ci` itself when node_modules lacks the pinned tool) and the package
registries (PyPI for the bundle's wheels, npm for the tools); never AWS: the credentials are dummies and
packaging makes no AWS call. The project deploys with osls (docs/deploy.md); the Serverless Framework v3 is
installed once more (deploy/serverless-v3/) to prove serverless.yml still gives it the same template. About
20 s warm (bundle ~5 s, package ~4 s three times, cfn-lint ~3 s), plus ~20 s for each first `npm ci`.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.framework import SERVERLESS_V3, ensure_framework
from timpush import bundle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(900),
    # A laptop without Node.js skips this; CI (CI=true) never does: there a missing npm is a failure.
    pytest.mark.skipif(shutil.which("npm") is None and not os.environ.get("CI"), reason="needs Node.js and npm"),
]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "build" / "timpush-modifier.zip"
TENCENT_LIMIT = 5  # requests per second per app, for modify_sched_task
# cfn-lint findings the framework itself produces, by id:
#   W3005: the framework gives each HTTP API route a DependsOn on its integration that a Ref already implies.
IGNORED_CFN_LINT = ["W3005"]
# osls knows python3.12; v3 (3.40.0) predates it in its schema and warns about that one setting only.
# Every other configuration warning fails.
CONFIG_WARNINGS_V3 = {"provider.runtime"}


def sls_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1", SLS_TELEMETRY_DISABLED="1", SLS_TRACKING_DISABLED="1",
        SLS_NOTIFICATIONS_MODE="off", SLS_DEPRECATION_DISABLE="*", CI="true",
    )
    env.pop("AWS_PROFILE", None)
    return env


@pytest.fixture(scope="module")
def framework() -> Path:
    """node_modules/.bin/osls at the pinned version, installed by `npm ci` when it is not."""
    return ensure_framework()


@pytest.fixture(scope="module")
def artifact() -> Path:
    """The real artifact, built for the architecture serverless.yml names."""
    return bundle.build(ARTIFACT, arch=declared_architecture())


def declared_architecture() -> str:
    match = re.search(r"^\s+architecture:\s*(\S+)", (ROOT / "serverless.yml").read_text(), re.MULTILINE)
    assert match, "serverless.yml names no provider.architecture"
    return match.group(1)


def package(framework: Path, out: Path, *params: str) -> subprocess.CompletedProcess[str]:
    command = [str(framework), "package", "--stage", "ci", "--region", "us-east-1", "--package", str(out)]
    command += [f"--param={param}" for param in params]
    result = subprocess.run(command, cwd=ROOT, env=sls_env(), capture_output=True, text=True,  # noqa: S603
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def packaged(framework: Path, artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("sls")
    result = package(framework, out)
    assert config_warnings(result) == set(), result.stderr
    yield out / "cloudformation-template-update-stack.json"


def config_warnings(result: subprocess.CompletedProcess[str]) -> set[str]:
    """The settings the framework's schema check warned about (`configValidationMode: warn`)."""
    return set(re.findall(r"at '([^']+)'", result.stderr + result.stdout))


@pytest.fixture(scope="module")
def template(packaged: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(packaged.read_text())
    return data


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def function(template: dict[str, Any], name: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][f"{name.capitalize()}LambdaFunction"]["Properties"]
    return props


def env(template: dict[str, Any], name: str) -> dict[str, Any]:
    variables: dict[str, Any] = function(template, name)["Environment"]["Variables"]
    return variables


# --- the artifact --------------------------------------------------------------------------------------------


def test_artifact_carries_handler_and_cp312_dependencies_for_its_architecture(artifact: Path) -> None:
    with zipfile.ZipFile(artifact) as archive:
        entries = archive.namelist()
    machine = bundle.ARCHES[declared_architecture()]

    assert "handler/__init__.py" in entries
    extensions = [entry for entry in entries if entry.endswith(".so")]
    assert extensions and all(f"cpython-312-{machine}-linux-gnu" in entry for entry in extensions)
    assert not [entry for entry in entries if entry.startswith(("pydantic/", "pydantic_core/"))]
    assert {"aws_lambda_powertools/__init__.py", "requests/__init__.py", "redis/__init__.py",
            "tencentcloud/common/__init__.py", "tencentcloud/ssm/__init__.py"} <= set(entries)
    tops = {entry.split("/")[0] for entry in entries}
    assert not tops & {"tests", "timpush", "events", "node_modules", "boto3", "botocore", "bin"}
    assert artifact.stat().st_size < 50 * 1024 * 1024  # Lambda's direct-upload limit, for `deploy function`
    if bundle.find_python312() is not None:
        assert "handler/__pycache__/__init__.cpython-312.pyc" in entries
        assert "aws_lambda_powertools/logging/__pycache__/logger.cpython-312.pyc" in entries
        assert not [e for e in entries if e.endswith(".pyc") and ".cpython-312." not in e]


@pytest.mark.skipif(bundle.find_python312() is None, reason="no Python 3.12 to import the bundle with")
def test_bundle_for_this_machine_imports_and_runs_without_boto3(tmp_path: Path) -> None:
    # Given the bundle built for this machine's architecture, unpacked as Lambda would
    arch = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    if arch is None:
        pytest.skip(f"no Lambda architecture matches {platform.machine()}")
    built = bundle.build(tmp_path / "local.zip", arch=arch)
    task = tmp_path / "task"
    with zipfile.ZipFile(built) as archive:
        archive.extractall(task)
    # When Python 3.12 (isolated: no site-packages, no PYTHON* variables) runs a direct payload through it
    python = bundle.find_python312()
    assert python is not None
    script = (
        "import json, sys, handler\n"
        "class Context:\n"
        "    function_name = 'timpush-modifier-test'; memory_limit_in_mb = 256; aws_request_id = 'r-1'\n"
        "    invoked_function_arn = 'arn:aws:lambda:us-east-1:000000000000:function:timpush-modifier-test'\n"
        "    def get_remaining_time_in_millis(self): return 60000\n"
        "event = {'TaskID': 'x', 'Type': 'All', 'SchedAt': '2099-01-01 00:00:00'}\n"
        "result = handler.lambda_handler(event, Context())\n"
        "print(json.dumps(result))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('boto3', 'botocore', 'redis')))))\n"
    )
    clean_env = {
        "PATH": os.environ.get("PATH", ""), "IM_SDKAPPID": "1400000000", "IM_SECRET_KEY": "k",
        "IM_ENDPOINT": "http://127.0.0.1:9", "DEAD_LETTER": f"file:{tmp_path / 'dl.jsonl'}",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    result = subprocess.run([python, "-B", "-s", "-c", script], cwd=task, env=clean_env,  # noqa: S603
                            capture_output=True, text=True, timeout=120)
    # Then the invalid TaskID is refused locally and dead-lettered, and neither boto3 nor redis-py (no store
    # configured) was imported
    assert result.returncode == 0, result.stderr
    answer, boto = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    assert answer["dead_lettered"] == 1 and answer["results"][0]["ErrorCode"] == 90104
    assert boto == []
    assert json.loads((tmp_path / "dl.jsonl").read_text().splitlines()[0])["error"]["code"] == 90104


def without_upload_stamp(template: dict[str, Any]) -> dict[str, Any]:
    """The template with each artifact's S3 key cut to its file name: the key carries the packaging time."""
    text = re.sub(r'"serverless/[^"]*/(?P<file>[^"/]+\.zip)"', r'"\g<file>"', json.dumps(template))
    stamped: dict[str, Any] = json.loads(text)
    return stamped


def test_serverless_v3_still_packages_the_same_template(artifact: Path, template: dict[str, Any],
                                                        tmp_path: Path) -> None:
    # Given the Serverless Framework v3 as pinned before the move to osls (no more releases; some teams keep it)
    v3 = ensure_framework(SERVERLESS_V3)
    # When it packages the same serverless.yml
    result = package(v3, tmp_path)
    # Then it warns only about python3.12, which its schema predates, and builds the template osls builds
    assert config_warnings(result) <= CONFIG_WARNINGS_V3, result.stderr
    built = json.loads((tmp_path / "cloudformation-template-update-stack.json").read_text())
    assert without_upload_stamp(built) == without_upload_stamp(template)


# --- the CloudFormation template -----------------------------------------------------------------------------


def test_cfn_lint_passes(packaged: Path) -> None:
    cfn_lint = ROOT / ".venv" / "bin" / "cfn-lint"
    executable = str(cfn_lint) if cfn_lint.exists() else shutil.which("cfn-lint")
    assert executable, "cfn-lint is a dev dependency"
    command = [executable, "--ignore-checks", *IGNORED_CFN_LINT, "--", str(packaged)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)  # noqa: S603
    # exit status bits: 2 errors, 4 warnings, 8 informational; errors and warnings fail
    assert result.returncode & (2 | 4) == 0, result.stdout + result.stderr


def test_every_function_runs_the_artifact_on_python312(template: dict[str, Any]) -> None:
    functions = resources(template, "AWS::Lambda::Function")

    assert set(functions) == {"WorkerLambdaFunction", "ApiLambdaFunction", "ScheduleLambdaFunction"}
    for resource in functions.values():
        props = resource["Properties"]
        assert props["Handler"] == "handler.lambda_handler"
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == [declared_architecture()]
        assert props["Code"]["S3Key"].endswith("/timpush-modifier.zip")


def test_work_queue_redrive_matches_im_max_receives(template: dict[str, Any]) -> None:
    queue = template["Resources"]["WorkQueue"]["Properties"]

    assert int(queue["RedrivePolicy"]["maxReceiveCount"]) == int(env(template, "worker")["IM_MAX_RECEIVES"]) == 5
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["UnprocessedQueue", "Arn"]}


def test_max_receives_is_one_setting(framework: Path, artifact: Path, tmp_path: Path) -> None:
    package(framework, tmp_path, "maxReceives=7")
    template = json.loads((tmp_path / "cloudformation-template-update-stack.json").read_text())

    # a --param arrives as text; SQS takes maxReceiveCount as a number or a numeric string alike
    assert int(template["Resources"]["WorkQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]) == 7
    assert {env(template, name)["IM_MAX_RECEIVES"] for name in ("worker", "api", "schedule")} == {"7"}


def test_visibility_timeout_is_at_least_six_worker_timeouts(template: dict[str, Any]) -> None:
    visibility = template["Resources"]["WorkQueue"]["Properties"]["VisibilityTimeout"]

    assert visibility >= 6 * function(template, "worker")["Timeout"]


def test_queue_trigger_reports_batch_item_failures(template: dict[str, Any]) -> None:
    (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]

    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["WorkQueue", "Arn"]}
    assert 1 <= props["BatchSize"] <= 10
    assert props["ScalingConfig"]["MaximumConcurrency"] >= 2


def test_every_function_shares_one_budget_in_the_state_table(template: dict[str, Any]) -> None:
    for name in ("worker", "api", "schedule"):
        variables = env(template, name)
        assert float(variables["IM_RATE_LIMIT"]) == TENCENT_LIMIT  # the fleet's total, not a share
        assert variables["IM_STATE_STORE"] == {"Fn::Sub": "dynamodb:${StateTable}"}
    (table,) = resources(template, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_even_the_fallback_cannot_overrun_tencents_rate(template: dict[str, Any]) -> None:
    (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping").values()
    caps = {name: function(template, name).get("ReservedConcurrentExecutions") for name in
            ("worker", "api", "schedule")}
    worker_cap = mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    caps["worker"] = min(worker_cap, caps["worker"] or worker_cap)
    assert all(caps.values()), "every function needs a concurrency cap, or the fallback is unbounded"
    assert caps["api"] >= 2, "the HTTP endpoint serves several callers at once"

    fallbacks = {name: float(env(template, name)["IM_RATE_FALLBACK"]) for name in caps}

    # whole numbers: a rate under 1 still sends one request in some second, whatever its period
    assert all(rate.is_integer() and rate >= 1 for rate in fallbacks.values())
    assert sum(fallbacks[name] * caps[name] for name in caps) <= TENCENT_LIMIT


def test_http_route_requires_iam(template: dict[str, Any]) -> None:
    routes = resources(template, "AWS::ApiGatewayV2::Route")

    assert [r["Properties"]["RouteKey"] for r in routes.values()] == ["PATCH /sched-tasks/{taskId}"]
    assert all(r["Properties"]["AuthorizationType"] == "AWS_IAM" for r in routes.values())
    assert function(template, "api")["Timeout"] <= 29  # HTTP API waits 30 s at most


def test_schedules_maintenance_without_input_and_an_example_disabled(template: dict[str, Any]) -> None:
    rules = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()]
    maintenance = [r for r in rules if "Input" not in r["Targets"][0]]
    with_input = [r for r in rules if "Input" in r["Targets"][0]]

    assert [r.get("State", "ENABLED") for r in maintenance] == ["ENABLED"]
    assert [r["State"] for r in with_input] == ["DISABLED"]
    assert json.loads(with_input[0]["Targets"][0]["Input"])["Type"] in {"All", "Tag", "User"}


def test_async_failures_go_to_a_queue(template: dict[str, Any]) -> None:
    config = template["Resources"]["ScheduleLambdaEvConf"]["Properties"]

    target = config["DestinationConfig"]["OnFailure"]["Destination"]
    assert target["Fn::GetAtt"][0] in resources(template, "AWS::SQS::Queue")
    assert config["MaximumRetryAttempts"] == 2


def test_dead_letter_routes_point_at_their_queues(template: dict[str, Any]) -> None:
    variables = env(template, "worker")
    queues = resources(template, "AWS::SQS::Queue")

    assert variables["DEAD_LETTER"] == {"Fn::Sub": "sqs:${DeadLetterQueue}"}
    assert variables["WORK_QUEUE"] == {"Fn::Sub": "sqs:${WorkQueue}"}
    # SQS Ref is the queue URL: render the !Sub with fake URLs and read it as the handler will
    routes_text = re.sub(r"\$\{(\w+)\}", lambda m: f"https://sqs.example/{m.group(1)}",
                         variables["DEAD_LETTER_ROUTES"]["Fn::Sub"])
    routes = json.loads(routes_text)
    assert routes == {"retryable": "sqs:https://sqs.example/RetryableDeadLetterQueue",
                      "too_late": "sqs:https://sqs.example/TooLateDeadLetterQueue"}
    assert {"DeadLetterQueue", "RetryableDeadLetterQueue", "TooLateDeadLetterQueue"} <= set(queues)


def test_every_dead_letter_queue_has_a_depth_alarm(template: dict[str, Any]) -> None:
    queues = set(resources(template, "AWS::SQS::Queue")) - {"WorkQueue"}
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()

    watched = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in alarms
        if a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and a["Properties"]["Namespace"] == "AWS/SQS"
    }
    assert watched == queues


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"]["IamRoleLambdaExecution"]["Properties"]
    found: list[dict[str, Any]] = role["Policies"][0]["PolicyDocument"]["Statement"]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_iam_is_least_privilege(template: dict[str, Any]) -> None:
    granted = statements(template)

    for statement in granted:
        actions = as_list(statement["Action"])
        assert "*" not in as_list(statement["Resource"]), statement
        assert not [a for a in actions if a.endswith("*") or a == "cloudwatch:PutMetricData"], statement
    secret = [s for s in granted if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
    assert len(secret) == 1 and as_list(secret[0]["Action"]) == ["secretsmanager:GetSecretValue"]
    assert secret[0]["Resource"]["Fn::Sub"].endswith(":secret:timpush-modifier/ci/im-app-key-??????")
    senders = {r["Fn::GetAtt"][0] for s in granted if "sqs:SendMessage" in as_list(s["Action"])
               for r in as_list(s["Resource"])}
    assert senders == set(resources(template, "AWS::SQS::Queue"))
    maintenance = [s for s in granted if "sqs:ChangeMessageVisibility" in as_list(s["Action"])]
    assert [r["Fn::GetAtt"][0] for s in maintenance for r in as_list(s["Resource"])] == [
        "RetryableDeadLetterQueue"]
    state = [s for s in granted if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert [(as_list(s["Action"]), as_list(s["Resource"])) for s in state] == [
        (["dynamodb:UpdateItem"], [{"Fn::GetAtt": ["StateTable", "Arn"]}])]
    readers = [s for s in granted if "sqs:DeleteMessage" in as_list(s["Action"])]
    assert {r["Fn::GetAtt"][0] for s in readers for r in as_list(s["Resource"])} == {
        "WorkQueue", "RetryableDeadLetterQueue"}


def test_a_saved_query_tells_a_tasks_history_from_every_functions_logs(template: dict[str, Any]) -> None:
    (query,) = resources(template, "AWS::Logs::QueryDefinition").values()
    props = query["Properties"]
    assert props["Name"].endswith("/history of a task")
    groups = {ref["Ref"] for ref in props["LogGroupNames"]}
    assert groups == {f"{name.capitalize()}LogGroup" for name in ("worker", "api", "schedule")}
    assert groups <= set(resources(template, "AWS::Logs::LogGroup"))
    assert "filter task_id = " in props["QueryString"] and "sort @timestamp asc" in props["QueryString"]
