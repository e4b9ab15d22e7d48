"""No event crashes a trigger: the samples of every shape, on both platforms, mutated where producers and
callers have a say (tests/support/mutation.py), through the real entry points in one warm process against
the emulator on loopback.

Whatever comes in ends as a result: no exception escapes; an SQS answer names only its own records and
accounts for every record (listed for redelivery, or finished with an outcome logged under its id); an HTTP
answer is 2xx or 4xx with the IM envelope as its JSON body (5xx only for the store or upstream, which are
healthy here); every other trigger answers with its summary, and each failure in it is a dead letter.
Seeded (``derandomize``): the same events on every run.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from handler import lambda_handler, main_handler, runtime
from handler.observability import logger
from handler.order.task import TaskOrder
from handler.state.memory import MemoryStore
from tests.support.im import ADMIN, APP, KEY, dead_letters
from tests.support.lambda_events import configure
from tests.support.mutation import mutated_events
from timpush.context import LocalContext, scf_context
from timpush.demo import TASKS, create_tasks
from timpush.emulator import Emulator, EmulatorSettings
from timpush.emulator.settings import SAMPLE_FIRST_TASK_ID

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("MUTATION_EXAMPLES", "1500"))  # events per platform and run
MUTATION = settings(deadline=None, database=None, derandomize=True, max_examples=EXAMPLES,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
UPSTREAM_CODES = {-1, -2, -3, -4, -5, -6}  # the only failures a 5xx may answer (none happen here)
SUMMARY = {"succeeded", "superseded", "dead_lettered", "results"}


class Lines(logging.Handler):
    """The handler's log records of the current event: outcomes by source id, and any ERROR."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def outcome_ids(self) -> set[str]:
        return {str(r.source.get("id")) for r in self.records  # type: ignore[attr-defined]
                if hasattr(r, "outcome") and isinstance(getattr(r, "source", None), dict)}

    def errors(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.ERROR]

    def unwritable(self) -> list[str]:
        """Lines the handler's own formatter cannot write as UTF-8 (a lone surrogate left unescaped)."""
        formatter = logger.handlers[0].formatter
        assert formatter is not None
        bad = []
        for record in self.records:
            try:
                formatter.format(record).encode("utf-8")
            except UnicodeEncodeError:
                bad.append(formatter.format(record).encode('utf-8', 'backslashreplace').decode())
        return bad


@pytest.fixture
def lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Lines, Path]]:
    """The emulator with the samples' tasks; the handler pointed at it, dead letters to a file."""
    emulated = EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=5, rate_limit=0,
                                first_task_id=SAMPLE_FIRST_TASK_ID)
    with Emulator(emulated) as emu:
        create_tasks(emu, say=lambda _line: None)
        dead = tmp_path / "dead.jsonl"
        configure(monkeypatch, {"IM_ENDPOINT": emu.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY,
                                "IM_ADMIN": ADMIN, "DEAD_LETTER": f"file:{dead}", "IM_RATE_LIMIT": "0",
                                "IM_MAX_ATTEMPTS": "1"})
        monkeypatch.delenv("WORK_QUEUE", raising=False)
        handler = Lines()
        logging.getLogger("timpush-modifier").addHandler(handler)
        try:
            yield handler, dead
        finally:
            logging.getLogger("timpush-modifier").removeHandler(handler)
            runtime.reset()


def invoke(platform: str, event: Any) -> Any:
    if platform == "aws":
        return lambda_handler(event, LocalContext(timeout_seconds=30))
    return main_handler(event, scf_context(30))


def check_sqs(event: dict[str, Any], answer: Any, lines: Lines) -> None:
    ids = [r["messageId"] for r in event["Records"]]
    assert set(answer) == {"batchItemFailures"}
    listed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
    assert set(listed) <= set(ids) and len(listed) == len(set(listed)), listed
    finished = lines.outcome_ids()
    for message_id in ids:
        escaped = message_id.encode("utf-8", "backslashreplace").decode("utf-8")
        assert message_id in listed or escaped in finished or message_id in finished, (message_id, answer)


def check_http(answer: Any) -> None:
    status = answer["statusCode"]
    body = json.loads(answer["body"])
    assert {"ActionStatus", "ErrorCode", "ErrorInfo", "TaskID"} <= set(body), body
    assert 200 <= status < 300 or 400 <= status < 500 or body["ErrorCode"] in UPSTREAM_CODES, (status, body)
    assert (status == 200) == (body["ErrorCode"] == 0), (status, body)


def check_summary(answer: Any, letters: int) -> None:
    if set(answer) != SUMMARY:  # the maintenance job's own summary (idle without a queue)
        assert {"redriven", "kept"} <= set(answer), answer
        return
    results = answer["results"]
    assert len(results) == answer["succeeded"] + answer["superseded"] + answer["dead_lettered"]
    assert answer["dead_lettered"] == letters
    for result in results:
        assert result["outcome"] in ("succeeded", "superseded", "dead_lettered")
        assert (result["outcome"] == "dead_lettered") == (result["ErrorCode"] not in (0, -7)), result


def run_one(platform: str, kind: str, event: Any, handler: Lines, dead: Path) -> None:
    handler.records.clear()
    dead.write_text("", encoding="utf-8")
    runtime.runtime().modifier.order = TaskOrder(MemoryStore())  # each event meets a task order of its own
    answer = invoke(platform, event)
    if kind == "sqs":
        check_sqs(event, answer, handler)
    elif "statusCode" in answer:
        check_http(answer)
    else:
        check_summary(answer, len(dead_letters(dead)))
    assert handler.errors() == [], handler.errors()
    assert handler.unwritable() == [], handler.unwritable()


@pytest.mark.parametrize("platform", ["aws", "scf"])
def test_mutated_events_end_as_results(platform: str, lines: tuple[Lines, Path]) -> None:
    handler, dead = lines
    assert TASKS  # the samples' tasks exist: valid mutations reach the emulator

    @given(mutated_events(platform))
    @MUTATION
    def property_(mutated: tuple[str, str, Any]) -> None:
        kind, _name, event = mutated
        run_one(platform, kind, event, handler, dead)

    property_()
