"""Every attempt ends inside the invocation (DESIGN "Entry points"), under AWS's own runtime interface client.

``python -m awslambdaric handler.lambda_handler`` runs against a fake of Lambda's runtime API on loopback, which
gives each invocation its deadline (``Lambda-Runtime-Deadline-Ms``) as Lambda does and notes when the answer
arrives. The IM endpoint is black-holed (a listener whose accept queue is full: every connect waits for its
timeout), and each invocation is an SQS batch of three. Whatever the deadline, the answer must reach the runtime
API before it; the records still to be delivered again are reported, the one on its last delivery is
dead-lettered with -2 (timed out).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.blackhole import BlackHole
from tests.fakes.lambda_runtime import FakeRuntimeApi
from tests.support.im import ADMIN, APP, KEY
from tests.support.lambda_events import HANDLER_VARS, sqs_event, sqs_record

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
# From the shortest timeout a worker may sensibly have up; chosen so the black hole's connect timeouts and the
# back-off fall differently against each deadline.
DEADLINES = (3.0, 3.6, 4.3, 6.0, 7.7)
BODY = json.dumps({"TaskID": 42, "Type": "All", "SchedAt": "2031-06-15 14:00:00"})


@pytest.fixture
def function(tmp_path: Path) -> Iterator[tuple[FakeRuntimeApi, Path]]:
    """The handler in its own process under awslambdaric, its IM endpoint black-holed; (runtime API, dead letters)."""
    dead = tmp_path / "dead.jsonl"
    with BlackHole() as hole, FakeRuntimeApi() as api:
        env = {name: value for name, value in os.environ.items() if name not in (*HANDLER_VARS, "IM_STATE_STORE")}
        env.update({"AWS_LAMBDA_RUNTIME_API": api.host, "PYTHONPATH": str(ROOT), "IM_ENDPOINT": hole.url,
                    "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY, "IM_ADMIN": ADMIN, "DEAD_LETTER": f"file:{dead}",
                    "IM_MAX_RECEIVES": "5", "IM_MAX_ATTEMPTS": "4", "POWERTOOLS_TRACE_DISABLED": "1",
                    "NO_PROXY": "127.0.0.1,localhost"})
        process = subprocess.Popen([sys.executable, "-m", "awslambdaric", "handler.lambda_handler"], cwd=tmp_path,
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield api, dead
        finally:
            process.kill()
            process.wait(timeout=10)
        assert api.init_errors == []


def test_a_black_holed_endpoint_never_makes_an_invocation_overrun(function: tuple[FakeRuntimeApi, Path]) -> None:
    api, dead = function
    for seconds in DEADLINES:
        # Given a batch of three: the middle one on its last delivery
        first, last, third = sqs_record(BODY), sqs_record(BODY, receive_count=5), sqs_record(BODY)
        # When Lambda gives the batch `seconds` to run
        answer = api.invoke(sqs_event([first, last, third]), seconds)
        # Then the function answers before its deadline, every time
        assert not answer.error, (seconds, answer.body)
        assert answer.arrived_ms <= answer.deadline_ms, (seconds, answer.deadline_ms - answer.arrived_ms)
        # and reports the two with deliveries left, while the one on its last delivery is dead-lettered, timed out
        assert answer.body == {"batchItemFailures": [{"itemIdentifier": first["messageId"]},
                                                     {"itemIdentifier": third["messageId"]}]}, seconds
        letters = [json.loads(line) for line in dead.read_text().splitlines()]
        assert [(d["source"]["id"], d["error"]["code"]) for d in letters][-1] == (last["messageId"], -2), seconds
    assert len(dead.read_text().splitlines()) == len(DEADLINES)
