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

import copy
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from handler import lambda_handler, main_handler, runtime
from handler.compat import UTC
from handler.observability import logger
from handler.order.task import TaskOrder
from handler.state.memory import MemoryStore
from tests.support.im import ADMIN, APP, KEY, dead_letters
from tests.support.lambda_events import configure
from tests.support.mutation import AWS_SAMPLES, SCF_SAMPLES, mutated_events
from timpush.context import LocalContext, scf_context
from timpush.demo import create_tasks
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
        self.fates: Counter[str] = Counter()  # over the whole run: the property is not met by refusing all

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if hasattr(record, "outcome"):
            self.fates[str(record.outcome)] += 1

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
                bad.append(record.getMessage())
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

    @given(mutated_events(platform))
    @MUTATION
    def property_(mutated: tuple[str, str, Any]) -> None:
        kind, _name, event = mutated
        run_one(platform, kind, event, handler, dead)

    property_()
    # the mutations stay near the valid events: many are still applied, many refused; HTTP ones answered
    fates = handler.fates
    assert fates["succeeded"] > EXAMPLES // 10 and fates["dead_lettered"] > EXAMPLES // 10, fates
    assert fates["answered"] > EXAMPLES // 50, fates


# --- what the mutation found, one by one (each failed before) ---------------------------------------

def sample_with(platform: str, sample: str, place: tuple[Any, ...], value: Any) -> tuple[Any, Any]:
    """A copy of the sample with ``value`` at ``place``; and the object that holds it."""
    event = copy.deepcopy((AWS_SAMPLES if platform == "aws" else SCF_SAMPLES)[sample])
    holder = event
    for step in place[:-1]:
        holder = holder[step]
    holder[place[-1]] = value
    return event, holder


DEEP = "[" * 3000 + "]" * 3000
TOO_DEEP_BODY = "body: nested too deeply (more than 100 levels)"
TOO_DEEP_PAYLOAD = "modification: the payload is nested too deeply (more than 100 levels)"
HTTP_SAMPLES = [("aws", AWS_SAMPLES["http-api-v2"]), ("aws", AWS_SAMPLES["rest-api-v1"]),
                ("aws", AWS_SAMPLES["function-url"]), ("scf", SCF_SAMPLES["function-url"]),
                ("scf", SCF_SAMPLES["apigw"])]


@pytest.mark.parametrize(("platform", "sample"), HTTP_SAMPLES, ids=["v2", "v1", "url", "scf-url", "scf-apigw"])
@pytest.mark.parametrize("body", [DEEP, '{"Type": "All", "Content": {"Extra": ' + "[" * 150 + "]" * 150 + "}}"])
def test_a_deep_http_body_is_answered_400_nested_too_deeply(platform: str, sample: dict[str, Any], body: str,
                                                            lines: tuple[Lines, Path]) -> None:
    # Given a valid request of each HTTP trigger whose body nests thousands (or 150) deep
    event = copy.deepcopy(sample)
    event["body"] = body
    # When it reaches the entry point, Then it is the caller's 400 with 90104, not a RecursionError (a 502)
    answer = invoke(platform, event)
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["ErrorCode"] == 90104
    assert json.loads(answer["body"])["ErrorInfo"] == TOO_DEEP_BODY


@pytest.mark.parametrize(("platform", "sample", "place"), [
    ("aws", "sqs-standard", ("Records", 0, "body")), ("aws", "sqs-sns", ("Records", 0, "body")),
    ("scf", "ckafka", ("Records", 0, "Ckafka", "msgBody")), ("scf", "tdmq", ("data", "msgBody")),
    ("scf", "eventbridge-batch", ("EventList", 0, "data", "msgBody")), ("scf", "timer", ("Message",))])
def test_a_deep_message_is_dead_lettered_nested_too_deeply(platform: str, sample: str, place: tuple[Any, ...],
                                                           lines: tuple[Lines, Path]) -> None:
    handler, dead = lines
    deep = DEEP if sample != "sqs-sns" else json.dumps({"Type": "Notification", "Message": DEEP})
    event, _holder = sample_with(platform, sample, place, deep)
    answer = invoke(platform, event)
    [letter] = dead_letters(dead)
    assert (letter["error"]["code"], letter["error"]["info"]) == (90104, TOO_DEEP_PAYLOAD)
    assert letter["raw"] == deep  # kept exactly as received
    if platform == "aws":
        assert answer == {"batchItemFailures": []}  # finished: never listed for a redelivery that fails again
    assert handler.errors() == []


def test_a_deep_direct_payload_is_dead_lettered_nested_too_deeply(lines: tuple[Lines, Path]) -> None:
    _handler, dead = lines
    payload: Any = {"TaskID": 1234567890, "Type": "All", "SchedAt": "2031-06-20 09:00:00"}
    for _ in range(150):
        payload = [payload]  # as Lambda's runtime parsed it: within its own limit, far beyond any modification
    answer = invoke("aws", payload)
    assert answer["dead_lettered"] == 1 and answer["results"][0]["ErrorInfo"] == TOO_DEEP_PAYLOAD
    assert dead_letters(dead)[0]["error"]["code"] == 90104


@pytest.mark.parametrize("time", ["99999999999999999", "not a number", "946684799999", "253402300800000", 1e300])
def test_an_unusable_eventbridge_time_is_ignored_with_a_warning(time: Any, lines: tuple[Lines, Path]) -> None:
    handler, dead = lines
    # Given a batch whose first event's time is unusable, the second valid
    event = copy.deepcopy(SCF_SAMPLES["eventbridge-batch"])
    event["EventList"][0]["time"] = time
    before = datetime.now(UTC)
    # When SCF hands it over, Then both are applied (no ValueError/OverflowError replays the batch)
    answer = invoke("scf", event)
    assert [r["outcome"] for r in answer["results"]] == ["succeeded", "succeeded"], answer
    warnings = [r for r in handler.records if r.getMessage().startswith("platform time unusable")]
    assert [w.field for w in warnings] == ["EventList[0].time"]  # type: ignore[attr-defined]
    issued = [datetime.fromisoformat(r.issued_at.replace("Z", "+00:00"))  # type: ignore[attr-defined]
              for r in handler.records if getattr(r, "outcome", None) == "succeeded"]
    assert issued[0] >= before.replace(microsecond=before.microsecond // 1000 * 1000)  # the time of receipt
    assert dead_letters(dead) == []


LONE = "id-\udcff-lone"  # a lone surrogate: a valid JSON escape ("\udcff") that no UTF-8 encoder takes


@pytest.mark.parametrize(("platform", "sample", "place"), [
    ("scf", "eventbridge-batch", ("EventList", 0, "id")), ("scf", "tdmq", ("id",)),
    ("aws", "sqs-standard", ("Records", 0, "messageId")), ("aws", "http-api-v2", ("requestContext", "requestId"))])
def test_an_id_that_is_not_valid_text_is_escaped(platform: str, sample: str, place: tuple[Any, ...],
                                                lines: tuple[Lines, Path]) -> None:
    handler, _dead = lines
    # Given a valid event whose id holds a lone surrogate (a TDMQ event's id counts when it has no msgId)
    event, holder = sample_with(platform, sample, place, LONE)
    if "data" in holder:
        holder["data"].pop("msgId")
    # When it is handed over, Then no UnicodeEncodeError (the order key's digest): it is applied
    answer = invoke(platform, event)
    if "Records" in event:
        assert answer == {"batchItemFailures": []}  # (an SQS answer would name the id exactly as SQS gave it)
    sources = [r.source for r in handler.records if hasattr(r, "outcome")]  # type: ignore[attr-defined]
    assert sources[0]["id"].endswith("id-\\udcff-lone"), sources  # escaped: the six characters \udcff
    assert handler.unwritable() == []
