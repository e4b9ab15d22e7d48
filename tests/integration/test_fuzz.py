"""Fuzz: arbitrary payloads through every trigger of the real handler, against the emulator.

For whatever comes in, the handler never raises, answers with an error that names the problem,
and never sends a request the server would refuse as invalid: the emulator holds one task of each
Type, and a request it answers with anything but success must address a task that does not exist
or has another Type (which only the server can know).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from handler import lambda_handler, runtime
from handler.aws.sqs import unwrap_sns
from handler.model import FIELD_NAMES as MODEL_FIELDS
from handler.model import split_payload
from handler.order.task import TaskOrder
from handler.state.memory import MemoryStore
from tests.support.im import ADMIN, APP, KEY, add_task, dead_letters, modify_requests
from tests.support.lambda_events import configure, failed_ids, http_event, sns_wrap, sqs_event, sqs_record
from tests.support.mutation import json_values, texts
from timpush.context import LocalContext
from timpush.emulator import Emulator, EmulatorSettings

pytestmark = pytest.mark.integration

_FUZZ = settings(deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def fuzz(examples: int) -> settings:
    """Bounded example counts keep CI fast; no deadline (a request over loopback varies)."""
    return settings(_FUZZ, max_examples=examples)
TYPES = ("All", "Tag", "User")
TASKS = (1234567890, 1234567891, 1234567892)  # the world's tasks: one All, one Tag, one User
FIELD_NAMES = set(MODEL_FIELDS)
_FIELD = re.compile(r'(?:[A-Za-z_][A-Za-z0-9_]*|\[".*?"\])(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\[".*?"\])*')


class World:
    """The emulator with one task per Type, and the handler pointed at it with pacing off."""

    def __init__(self, emu: Emulator, dead: Path) -> None:
        self.emu = emu
        self.dead = dead
        self.types = {add_task(emu, kind): kind for kind in TYPES}
        assert tuple(self.types) == TASKS
        self.superseded = _Superseded()

    def fresh(self) -> None:
        """Forget the previous example's requests, dead letters and applied changes (the task order)."""
        self.emu.clear_requests()
        self.dead.write_text("", encoding="utf-8")
        runtime.runtime().modifier.order = TaskOrder(MemoryStore())
        self.superseded.clear()


class _Superseded(logging.Handler):
    """Counts the handler's "superseded" log lines: an SQS answer does not list them."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage() == "modification superseded by a newer change"

    def clear(self) -> None:
        self.count = 0


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    emulated = EmulatorSettings(sdkappid=APP, key=KEY, admins=(ADMIN,), seed=3, rate_limit=0, first_task_id=TASKS[0])
    with Emulator(emulated) as emu:
        dead = tmp_path / "dead.jsonl"
        configure(monkeypatch, {"IM_ENDPOINT": emu.url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": KEY,
                                "IM_ADMIN": ADMIN, "DEAD_LETTER": f"file:{dead}", "IM_RATE_LIMIT": "0"})
        world = World(emu, dead)
        logging.getLogger("timpush-modifier").addHandler(world.superseded)
        try:
            yield world
        finally:
            logging.getLogger("timpush-modifier").removeHandler(world.superseded)


# --- strategies ----------------------------------------------------------------------------------


def task_ids(existing: tuple[int, ...]) -> st.SearchStrategy[Any]:
    """Half the time a task that exists (as a number or digits), else anything."""
    real = st.sampled_from(existing)
    other = (st.integers(min_value=-3, max_value=2**64) | st.text(max_size=12) | st.booleans() | st.none()
             | st.floats() | st.from_regex(r"0*[0-9]{1,21}", fullmatch=True) | json_values(2))
    return st.one_of(real, real, real.map(str), other)


@st.composite
def sched_ats(draw: st.DrawFn) -> Any:
    when = draw(st.datetimes(min_value=datetime(2031, 1, 1), max_value=datetime(2099, 12, 31)))
    past = draw(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2024, 1, 1)))
    minutes = draw(st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59))
    offset = timezone(timedelta(minutes=minutes))
    return draw(st.sampled_from([
        when.strftime("%Y-%m-%d %H:%M:%S"),
        when.replace(tzinfo=offset).isoformat(),
        when.isoformat(timespec="minutes"),
        when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        past.strftime("%Y-%m-%d %H:%M:%S"),
        past.replace(tzinfo=UTC).isoformat(),
        draw(st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?([+-][0-9]{2}:?[0-9]{2}|Z)?",
                           fullmatch=True)),
        draw(st.text(max_size=25)),
        draw(texts()),
        "2031-01-01 10:00:0" + chr(draw(st.integers(0xD800, 0xDFFF))),  # a near miss ending in a lone surrogate
        draw(json_values(2)),
    ]))


def tags() -> st.SearchStrategy[Any]:
    tag = st.text(max_size=20) | st.text(min_size=45, max_size=60) | json_values(1)
    return st.lists(tag, max_size=12) | json_values(2)


def conditions() -> st.SearchStrategy[Any]:
    keys = {"TagsAnd": tags(), "TagsOr": tags(), "TagsNot": tags(),
            "AttrsAnd": st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2),
            "AttrsOr": st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2),
            "Tagsor": tags()}
    return st.fixed_dictionaries({}, optional=keys) | json_values(2)


def contents() -> st.SearchStrategy[Any]:
    push_info = st.fixed_dictionaries({}, optional={
        "Title": st.text(max_size=20) | json_values(1), "Desc": st.text(max_size=20) | json_values(1),
        "PushFlag": st.integers(-1, 2), "Ext": st.text(max_size=10), "Sound": st.text(max_size=5)})
    accounts = st.lists(st.text(max_size=10) | json_values(1), max_size=4) | json_values(2)
    known = {"To_Account": accounts, "Condition": conditions(), "OfflinePushInfo": push_info | json_values(1),
             "From_Account": st.text(max_size=8) | json_values(1), "MsgRandom": st.integers(-1, 2**33),
             "Extra": json_values(3)}
    return st.fixed_dictionaries({}, optional=known) | json_values(2)


def modifications(existing: tuple[int, ...]) -> st.SearchStrategy[Any]:
    types = st.sampled_from(TYPES) | st.text(max_size=5) | json_values(1)
    optional = {"TaskID": task_ids(existing), "Type": types, "SchedAt": sched_ats(), "Content": contents(),
                "Sdkappid": st.sampled_from([APP, str(APP), APP + 1, 0]), "SchedAT": sched_ats(),
                "taskId": st.integers()}
    # TaskID and Type are there nearly always: a payload without them stops at the first check
    core = st.fixed_dictionaries({"TaskID": task_ids(existing), "Type": types, "SchedAt": sched_ats()},
                                 optional={k: v for k, v in optional.items() if k not in ("TaskID", "Type", "SchedAt")})
    return st.one_of(core, core, core, st.fixed_dictionaries({}, optional=optional))


@st.composite
def valid_modifications(draw: st.DrawFn, existing: tuple[int, ...]) -> dict[str, Any]:
    """A modification the server should accept (one of the world's tasks, its Type, sound parts)."""
    index = draw(st.integers(0, 2))
    kind = TYPES[index]
    mod: dict[str, Any] = {"TaskID": draw(st.sampled_from([existing[index], str(existing[index])])), "Type": kind}
    when = draw(st.datetimes(min_value=datetime(2031, 1, 1), max_value=datetime(2099, 12, 31)))
    sched = st.sampled_from([when.strftime("%Y-%m-%d %H:%M:%S"), when.isoformat(),
                             when.replace(tzinfo=timezone(timedelta(hours=-5))).isoformat()])
    tag = st.text(min_size=1, max_size=12)
    content = {
        "All": st.fixed_dictionaries({}, optional={"OfflinePushInfo": st.fixed_dictionaries(
            {}, optional={"Title": st.text(max_size=20), "Desc": st.text(max_size=20), "PushFlag": st.integers(0, 1)}),
            "From_Account": st.text(max_size=8), "MsgRandom": st.integers(0, 2**32 - 1), "Extra": json_values(2)}),
        "Tag": st.builds(lambda a, o, n: {"Condition": {k: v for k, v in (("TagsAnd", a), ("TagsOr", o),
                                                                             ("TagsNot", n)) if v}},
                         st.lists(tag, max_size=3), st.lists(tag, min_size=1, max_size=10, unique=True),
                         st.lists(tag, max_size=10)).filter(
            lambda c: not set(c["Condition"].get("TagsAnd", [])) & set(c["Condition"].get("TagsOr", []))),
        "User": st.fixed_dictionaries({"To_Account": st.lists(st.text(min_size=1, max_size=10), min_size=1,
                                                              max_size=5)}),
    }[kind]
    parts = draw(st.sampled_from(["SchedAt", "Content", "both"]))
    if parts != "Content":
        mod["SchedAt"] = draw(sched)
    if parts != "SchedAt":
        mod["Content"] = draw(content)
    return mod


@st.composite
def mutated(draw: st.DrawFn, existing: tuple[int, ...]) -> Any:
    """A valid modification with one part changed to anything: the edge between accepted and refused."""
    mod = draw(valid_modifications(existing))
    key = draw(st.sampled_from([*mod, "Sdkappid", "SchedAT", "Content"]))
    mod[key] = draw(json_values(3) | st.sampled_from(TYPES) | st.sampled_from(existing) | sched_ats() | contents())
    return mod


def payloads(existing: tuple[int, ...]) -> st.SearchStrategy[Any]:
    mods = st.one_of(valid_modifications(existing), mutated(existing), mutated(existing), modifications(existing))
    return st.one_of(mods, mods, st.lists(mods, max_size=3), st.fixed_dictionaries({"modifications": st.lists(
        mods, max_size=3) | json_values(2)}), json_values())


# --- the claims ----------------------------------------------------------------------------------


def check_requests(world: World) -> int:
    """Every modify request the server saw was valid: refused only for an unknown task or its Type."""
    accepted = 0
    for request in modify_requests(world.emu):
        body = request["body"]
        assert isinstance(body, dict) and body["Sdkappid"] == APP
        addressed = world.types.get(body["TaskID"])
        if addressed == body["Type"]:
            assert request["code"] == 0, (request["code"], body)
            accepted += 1
        else:
            assert request["code"] == 90104, (request["code"], body)
    event("sent: accepted" if accepted else "sent: none accepted")
    return accepted


def check_named(info: str, item: Any) -> None:
    """A local refusal starts with the field at fault, e.g. ``Content.To_Account[0]: must not be empty``.

    Only the first is checked: later ones follow "; ", which an echoed input value may also hold.
    """
    match = re.match(f"({_FIELD.pattern}): \\S", info)
    assert match, info
    field = match.group(1)
    root = re.split(r"[.\[]", field, maxsplit=1)[0]
    named = root in FIELD_NAMES or root in ("modification", "modifications") or field.startswith("[")
    assert named or (isinstance(item, dict) and root in item), (field, item)


def check_letters(world: World, results: list[dict[str, Any]], items: list[Any]) -> list[dict[str, Any]]:
    letters = dead_letters(world.dead)
    failed = [r for r in results if r["outcome"] == "dead_lettered"]
    assert len(letters) == len(failed)
    for letter, result in zip(letters, failed, strict=True):
        assert letter["error"]["code"] == result["ErrorCode"] != 0
        assert letter["error"]["info"] == result["ErrorInfo"] and result["ErrorInfo"].strip()
        assert isinstance(letter["raw"], str)
    for result, item in zip(results, items, strict=True):
        if result["outcome"] == "dead_lettered" and result["ErrorCode"] in (90104, 90110):
            letter = next(d for d in letters if d["error"]["info"] == result["ErrorInfo"])
            if letter["error"]["origin"] == "local":
                check_named(result["ErrorInfo"], item)
    return letters


def run_direct(world: World, payload: Any) -> None:
    world.fresh()
    items = [item.parsed for item in split_payload(payload)]
    result = lambda_handler(payload, LocalContext(timeout_seconds=30))
    assert set(result) == {"succeeded", "superseded", "dead_lettered", "results"}
    results = result["results"]
    assert len(results) == len(items) == result["succeeded"] + result["superseded"] + result["dead_lettered"]
    for entry in results:
        assert (entry["outcome"] == "succeeded") == (entry["ErrorCode"] == 0)
        assert (entry["outcome"] == "superseded") == (entry["ErrorCode"] == -7)
    check_letters(world, results, items)
    assert check_requests(world) == result["succeeded"]


@given(data=st.data())
@fuzz(150)
def test_direct_payloads(world: World, data: st.DataObject) -> None:
    run_direct(world, data.draw(payloads(TASKS)))


@given(data=st.data())
@fuzz(40)
def test_schedule_inputs(world: World, data: st.DataObject) -> None:
    # An EventBridge envelope: a "Scheduled Event" runs the maintenance job (idle without WORK_QUEUE);
    # anything else is a payload like a schedule's input, refused and kept
    envelope = data.draw(st.fixed_dictionaries({
        "version": st.just("0"), "id": st.uuids().map(str),
        "detail-type": st.sampled_from(["Scheduled Event", "Object Created"]) | st.text(max_size=10),
        "source": st.sampled_from(["aws.events", "aws.scheduler"]) | st.text(max_size=10),
        "time": st.just("2026-06-01T08:00:00Z"), "detail": json_values(3)}))
    world.fresh()
    result = lambda_handler(envelope, LocalContext(timeout_seconds=30))
    assert modify_requests(world.emu) == []
    if envelope["detail-type"] == "Scheduled Event":
        assert result == {"redriven": 0, "kept": 0, "kept_at_limit": 0} and dead_letters(world.dead) == []
    else:
        assert result["dead_lettered"] == 1
        [letter] = dead_letters(world.dead)
        assert json.loads(letter["raw"]) == envelope and letter["error"]["info"]
    # and a schedule's input is any payload
    run_direct(world, data.draw(payloads(TASKS)))


def sqs_bodies(existing: tuple[int, ...]) -> st.SearchStrategy[str]:
    # A message body is valid Unicode (SQS refuses anything else): a lone surrogate arrives as its JSON escape
    as_json = payloads(existing).map(lambda p: json.dumps(p, ensure_ascii=False)
                                     .encode("utf-8", "backslashreplace").decode("utf-8"))
    return st.one_of(as_json, as_json, as_json.map(sns_wrap), st.text(max_size=40),
                     st.binary(max_size=20).map(lambda b: b.decode("latin-1")))


@given(bodies=st.lists(sqs_bodies(TASKS), min_size=1, max_size=4), receive=st.integers(1, 5))
@fuzz(60)
def test_sqs_bodies(world: World, bodies: list[str], receive: int) -> None:
    world.fresh()
    records = [sqs_record(body, receive) for body in bodies]
    # With a healthy server nothing is retryable: every message is finished, succeeded or dead-lettered
    assert failed_ids(lambda_handler(sqs_event(records), LocalContext(timeout_seconds=30))) == []
    letters = dead_letters(world.dead)
    for letter in letters:
        assert letter["error"]["info"].strip() and letter["error"]["code"] != 0
        assert letter["source"]["id"] in {r["messageId"] for r in records}
        assert letter["source"]["receive_count"] == receive
    for record in records:
        mine = [d for d in letters if d["source"]["id"] == record["messageId"]]
        if len(mine) == 1 and len(split_payload(unwrap_sns(record["body"]))) == 1:
            assert mine[0]["raw"] == record["body"]  # the body exactly as SQS delivered it
    accepted = check_requests(world)
    items = sum(len(split_payload(_unwrapped(r["body"]))) for r in records)
    assert accepted == items - len(letters) - world.superseded.count


def _unwrapped(body: str) -> str:
    return unwrap_sns(body)


SEGMENT_ALPHABET = st.characters(codec="utf-8", exclude_characters="/?#")


@st.composite
def http_requests(draw: st.DrawFn, existing: tuple[int, ...]) -> tuple[str, str, str | None]:
    mod = draw(st.one_of(valid_modifications(existing), valid_modifications(existing), mutated(existing),
                         modifications(existing)))
    task = mod.get("TaskID") if isinstance(mod, dict) else None
    addressed = str(task) if isinstance(task, int | str) and not isinstance(task, bool) else "1"
    odd = st.sampled_from(["²", "1²", "١٢", "0", "000", "0" * 30 + "7", "9" * 25, "1e3", " 1", "+1", "%31"])
    segment = draw(st.one_of(*[st.just(addressed)] * 4, st.sampled_from(existing).map(str),
                             st.integers(-2, 2**70).map(str), odd, st.text(SEGMENT_ALPHABET, min_size=1, max_size=20)))
    path = draw(st.sampled_from([f"/sched-tasks/{segment}"] * 4 + [f"/sched-tasks/{segment}/", f"/{segment}",
                                                                    f"/sched-tasks/{segment}/x"]))
    without_id = {k: v for k, v in mod.items() if k != "TaskID"} if isinstance(mod, dict) else mod
    body = draw(st.one_of(*[st.just(json.dumps(without_id))] * 2, st.just(json.dumps(mod)), st.text(max_size=30),
                          st.none()))
    method = draw(st.sampled_from(["PATCH"] * 6 + ["GET", "POST", "PUT"]))
    return method, path, body


STATUSES = {200, 400, 404, 405, 409, 422}


@given(request=http_requests(TASKS))
@fuzz(120)
def test_http_bodies_and_paths(world: World, request: tuple[str, str, str | None]) -> None:
    method, path, body = request
    world.fresh()
    result = lambda_handler(http_event(path, body, method), LocalContext(timeout_seconds=30))
    status, answer = result["statusCode"], json.loads(result["body"])
    assert status in STATUSES, (status, answer)
    assert set(answer) >= {"ActionStatus", "ErrorCode", "ErrorInfo", "TaskID"}
    assert (status == 200) == (answer["ErrorCode"] == 0) == (answer["ActionStatus"] == "OK")
    if status != 200:
        assert answer["ErrorInfo"].strip()
        for problem in answer.get("errors", []):
            assert problem["field"] and problem["message"].strip()
    if method == "PATCH" and re.fullmatch(r"/sched-tasks/[^/]+", path):
        assert status not in (404, 405), answer  # the route exists: a bad taskId is the caller's 400
    if status in (404, 405):
        assert path in answer["ErrorInfo"]
    if status == 400 and "errors" in answer:
        field = answer["errors"][0]["field"]
        assert field in answer["ErrorInfo"] or field in ("taskId", "body", "TaskID")
    assert dead_letters(world.dead) == []  # answered, never dead-lettered
    assert check_requests(world) == (1 if status == 200 else 0)


@pytest.mark.parametrize("segment", ["²", "1²", "١٢", "😀", 'a"b', "0", "9" * 25, "1e3"])
def test_odd_task_ids_in_the_path_are_refused_by_name(world: World, segment: str) -> None:
    # Found by the fuzz: "²".isdigit() is True yet int("²") raises, and a PATCH whose taskId the route's
    # pattern refuses was answered 405 "use PATCH"
    event = http_event(f"/sched-tasks/{segment}", json.dumps({"Type": "All", "SchedAt": "2031-01-01 00:00:00"}))
    result = lambda_handler(event, LocalContext(timeout_seconds=30))
    answer = json.loads(result["body"])
    assert result["statusCode"] == 400 and answer["errors"][0]["field"] == "taskId"
    assert answer["ErrorInfo"].startswith("taskId: the path must hold a positive integer")
    assert modify_requests(world.emu) == []
