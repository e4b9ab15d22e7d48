"""A user's mistake meets one line naming it and exit status 2, never a Python traceback (issue 21, item 6).

Each case runs ``timpush`` as a user does (a separate process); nothing here reaches a server: the mistakes
are caught before a request, or the modification is refused locally.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import ROOT, timpush
from tests.support.im import APP, KEY

pytestmark = pytest.mark.integration

EVENTS = ROOT / "events"
PAST = {"TaskID": 5, "Type": "All", "SchedAt": "2001-01-01 00:00:00"}  # refused locally (90110): no request


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"IM_SECRET_KEY": KEY, "IM_SDKAPPID": str(APP), "IM_ENDPOINT": "http://127.0.0.1:9",
            "DEAD_LETTER": f"file:{tmp_path / 'dl.jsonl'}", **extra}


def _sample(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def _one_line(run: subprocess.CompletedProcess[str], text: str) -> None:
    """Exit 2 and ``text`` on one line of its own, not inside a traceback."""
    lines = run.stderr.splitlines()
    assert run.returncode == 2, run.stderr
    assert [line for line in lines if text in line and line.startswith("timpush")], run.stderr
    assert not [line for line in lines if line.startswith("Traceback")], run.stderr
    assert run.stdout == ""


def test_an_event_file_that_is_missing_a_directory_not_utf8_or_not_json(tmp_path: Path) -> None:
    (tmp_path / "latin1.json").write_bytes(b'{"Title": "caf\xe9"}')
    (tmp_path / "broken.json").write_text('{"TaskID": 5,', encoding="utf-8")
    _one_line(timpush("invoke", "nope.json", env=_env(tmp_path)), "timpush invoke: nope.json: No such file")
    _one_line(timpush("invoke", "events", env=_env(tmp_path)), "timpush invoke: events: Is a directory")
    _one_line(timpush("invoke", str(tmp_path / "latin1.json"), env=_env(tmp_path)), "latin1.json: not UTF-8")
    _one_line(timpush("invoke", str(tmp_path / "broken.json"), env=_env(tmp_path)), "broken.json: is not JSON")


@pytest.mark.parametrize(("sample", "path", "named"), [
    ("sqs-standard", ("Records", 0, "messageId"), "Records[0].messageId: missing; an SQS record as Lambda"),
    ("sqs-fifo", ("Records", 1, "body"), "Records[1].body: missing"),
    ("http-api-v2", ("requestContext", "stage"), "requestContext.stage: missing in an HTTP API (payload 2.0)"),
    ("function-url", ("rawPath",), "rawPath: missing in a function URL event"),
    ("rest-api-v1", ("path",), "path: missing in a REST API (payload 1.0) event"),
], ids=["sqs-message-id", "sqs-body", "http-v2-stage", "url-raw-path", "rest-v1-path"])
def test_a_malformed_event_names_the_missing_field(sample: str, path: tuple[Any, ...], named: str,
                                                   tmp_path: Path) -> None:
    # Given a sample event with one field the platform always sends taken out
    event = _sample(sample)
    parent = event
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    # When it is invoked, then it is refused naming the field, and nothing was applied or dead-lettered
    _one_line(timpush("invoke", "-", env=_env(tmp_path), stdin=json.dumps(event)), named)
    assert not (tmp_path / "dl.jsonl").exists()


def test_an_scf_event_of_no_known_shape_is_one_line(tmp_path: Path) -> None:
    run = timpush("invoke", "--platform", "scf", "-", env=_env(tmp_path), stdin='{"Records": []}')
    _one_line(run, "timpush invoke: -: not an SCF event this function takes")


def test_a_dead_letter_file_in_a_missing_directory(tmp_path: Path) -> None:
    # a dead letter that cannot be written is a run-time failure, whatever the sink (DESIGN "Command line"): 1
    env = _env(tmp_path, DEAD_LETTER="file:/nonexistent/dir/x.jsonl")
    run = timpush("invoke", "-", env=env, stdin=json.dumps(PAST))
    named = "timpush invoke: a dead letter could not be written: file:/nonexistent/dir/x.jsonl: No such file"
    assert run.returncode == 1 and named in run.stderr.splitlines()[-1] and run.stdout == ""


def test_a_body_marked_base64_that_is_not_is_a_400_naming_it(tmp_path: Path) -> None:
    event = {**_sample("http-api-v2"), "isBase64Encoded": True, "body": "%%% not base64"}
    run = timpush("invoke", "-", env=_env(tmp_path), stdin=json.dumps(event))
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["ErrorInfo"] == "body: isBase64Encoded, but not base64 of UTF-8 text"
    latin1 = {**event, "body": base64.b64encode(b'{"Title": "caf\xe9"}').decode()}
    assert json.loads(timpush("invoke", "-", env=_env(tmp_path), stdin=json.dumps(latin1)).stdout)["statusCode"] == 400


@pytest.mark.parametrize(("args", "named"), [
    (("invoke", "--timeout", "0", "-"), "argument --timeout: expected a number of seconds above 0, got '0'"),
    (("invoke", "--timeout", "-5", "-"), "argument --timeout: expected a number of seconds above 0, got '-5'"),
    (("usersig", "--expire", "-5"), "argument --expire: expected a positive integer, got '-5'"),
    (("usersig", "--sdkappid", "0"), "argument --sdkappid: expected a positive integer, got '0'"),
    (("bundle", "--platform", "scf", "--arch", "arm64"), "unknown architecture 'arm64' for scf; one of x86_64"),
    (("emulator", "--port", "99999"), "argument --port: expected a port from 0 to 65535, got '99999'"),
    (("bundle", "--out", "/dev/null/artifact.zip"),
     "timpush bundle: --out /dev/null/artifact.zip: /dev/null is not a directory"),
], ids=["timeout-zero", "timeout-negative", "expire-negative", "sdkappid-zero", "scf-arm64", "port", "bundle-out"])
def test_bad_arguments_exit_2_naming_them(args: tuple[str, ...], named: str, tmp_path: Path) -> None:
    run = timpush(*args, env=_env(tmp_path), stdin="{}", cwd=ROOT)
    assert run.returncode == 2, run.stderr
    assert named in run.stderr and "Traceback" not in run.stderr


def test_demo_refuses_a_dead_letter_file_it_could_not_write(tmp_path: Path) -> None:
    run = timpush("demo", "--dead-letters", str(tmp_path / "missing" / "demo.jsonl"))
    _one_line(run, f"timpush demo: --dead-letters {tmp_path / 'missing' / 'demo.jsonl'}: no directory")
    _one_line(timpush("demo", "--dead-letters", str(tmp_path)), f"--dead-letters {tmp_path}: a directory")


def test_usersig_names_an_sdkappid_that_is_not_a_number(tmp_path: Path) -> None:
    run = timpush("usersig", env={"IM_SECRET_KEY": KEY, "IM_SDKAPPID": "14000x"}, stdin="")
    assert run.returncode == 2 and "IM_SDKAPPID='14000x' is not a positive integer" in run.stderr
    assert "Traceback" not in run.stderr and KEY not in run.stderr


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("IM_RATE_LIMIT", "5/s", "timpush invoke: configuration error: IM_RATE_LIMIT: Input should be a valid number, "
                             "unable to parse string as a number (got '5/s')"),
    ("POWERTOOLS_LOG_LEVEL", "verbose", "timpush: POWERTOOLS_LOG_LEVEL='verbose': not a log level"),
    ("LOG_LEVEL", "loud", "timpush: LOG_LEVEL='loud': not a log level"),
], ids=["rate-limit", "powertools-log-level", "log-level"])
def test_a_bad_variable_is_named_with_its_value(variable: str, value: str, named: str, tmp_path: Path) -> None:
    run = timpush("invoke", "-", env=_env(tmp_path, **{variable: value}), stdin=json.dumps(PAST))
    _one_line(run, named)
    assert "Value error" not in run.stderr and KEY not in run.stderr
