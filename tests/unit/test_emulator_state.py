"""The emulator's pure parts, without sockets: clock, rate window, faults, time format, task status,
content rules, listing, and the request pipeline driven on a frozen clock."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handler.im import usersig
from timpush.emulator import EmulatorSettings, Fault
from timpush.emulator.clock import Clock
from timpush.emulator.content import check_content
from timpush.emulator.core import EmulatorCore, Request
from timpush.emulator.envelope import ApiError
from timpush.emulator.faults import FaultQueue
from timpush.emulator.listing import ListQuery, select
from timpush.emulator.ratelimit import SlidingWindow
from timpush.emulator.tasks import Task
from timpush.emulator.validation import format_time, parse_time

APP = 1400000001
KEY = "unit-test-key"
T0 = 1_900_000_000.0  # a fixed emulated "now" in 2030


class FrozenTime:
    """Wall and monotonic time that move only when the test says so."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


# --- clock and rate window ----------------------------------------------------------------------


def test_clock_advances_both_times_and_resets() -> None:
    wall, mono = FrozenTime(), FrozenTime()
    clock = Clock(wall, mono)
    clock.advance(90)
    assert (clock.now(), clock.monotonic(), clock.offset) == (T0 + 90, T0 + 90, 90)
    clock.reset()
    assert clock.now() == T0
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError):
            clock.advance(bad)


def test_window_admits_limit_per_key_and_slides() -> None:
    window = SlidingWindow(limit=5)
    assert [window.admit("a", T0) for _ in range(6)] == [True] * 5 + [False]
    assert window.admit("b", T0)  # another key has its own budget
    assert not window.admit("a", T0 + 0.999)
    assert window.admit("a", T0 + 1.0)


def test_refused_calls_do_not_consume_budget() -> None:
    # Given a full window at T0 and three refused calls 0.6 s later
    window = SlidingWindow(limit=5)
    for _ in range(5):
        window.admit("a", T0)
    assert [window.admit("a", T0 + 0.6) for _ in range(3)] == [False] * 3
    # Then once the T0 calls age out, the full budget is back (the refused ones never counted)
    assert [window.admit("a", T0 + 1.1) for _ in range(6)] == [True] * 5 + [False]


def test_window_limit_zero_is_off() -> None:
    window = SlidingWindow(limit=0)
    assert all(window.admit("a", T0) for _ in range(100))


# --- faults -----------------------------------------------------------------------------------------


def test_fault_spec_parses_every_option() -> None:
    fault = Fault.parse("error:count=2:probability=0.5:api=modify:code=91000:delay=0")
    assert fault == Fault("error", count=2, probability=0.5, api="modify_sched_task", code=91000, delay=0.0)
    assert Fault.parse("slow:delay=2.5").delay == 2.5
    assert Fault.from_dict(fault.to_dict()) == fault


@pytest.mark.parametrize(
    "spec",
    [
        "explode",
        "error",
        "drop:code=91000",
        "drop:count=0",
        "drop:count=two",
        "drop:probability=1.5",
        "drop:api=cancel",
        "drop:colour=red",
        "drop:count",
        "slow:delay=-1",
    ],
)
def test_bad_fault_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        Fault.parse(spec)


def test_fault_json_numbers_must_not_be_booleans() -> None:
    with pytest.raises(ValueError):
        Fault.from_dict({"kind": "drop", "count": True})


def test_queue_fires_in_order_and_honours_count_and_api() -> None:
    queue = FaultQueue(seed=0)
    queue.add([Fault("drop", api="get", count=2), Fault("http_502")])
    fired = [queue.take(api) for api in ("modify_sched_task", "get_sched_task", "get_sched_task", "get_sched_task")]
    assert [f.kind if f else None for f in fired] == ["http_502", "drop", "drop", None]
    assert queue.pending() == []


def test_queue_probability_repeats_with_the_seed_and_never_runs_out() -> None:
    def kinds(seed: int) -> list[bool]:
        queue = FaultQueue(seed)
        queue.add([Fault("internal_error", probability=0.3)])
        return [queue.take("get_sched_task") is not None for _ in range(200)]

    assert kinds(1) == kinds(1)
    assert 30 < sum(kinds(1)) < 90
    assert kinds(1) != kinds(2)


def test_queue_pending_shows_what_is_left() -> None:
    queue = FaultQueue(seed=0)
    queue.add([Fault("rate_limit", count=3), Fault("drop", probability=0.1)])
    queue.take("get_sched_task")
    assert [entry["left"] for entry in queue.pending()] == [2, None]
    assert queue.clear() == 2 and queue.pending() == []


# --- time format, task status, content, listing --------------------------------------------------


@given(st.integers(min_value=0, max_value=253402300799))
def test_time_format_round_trips(timestamp: int) -> None:
    assert parse_time(format_time(timestamp), "SchedAt") == timestamp


@pytest.mark.parametrize(
    "text", ["2030-02-29 00:00:00", "2030-1-01 00:00:00", "2030-01-01 00:00:60", "２０３０-01-01 00:00:00", 20300101]
)
def test_bad_times_are_90104_naming_the_field(text: object) -> None:
    with pytest.raises(ApiError) as caught:
        parse_time(text, "BeginTime")
    assert caught.value.code == 90104 and "BeginTime" in caught.value.info


def test_status_boundaries() -> None:
    task = Task(1, APP, "All", int(T0), int(T0) - 60, {})
    assert [task.status(T0 + d, 5) for d in (-0.001, 0, 4.999, 5)] == [
        "pending",
        "dispatching",
        "dispatching",
        "dispatched",
    ]
    assert task.status(T0, 0) == "dispatched"


def test_content_passes_unknown_keys_and_returns_a_copy() -> None:
    content = {"To_Account": ["u"], "DataId": "x", "Future": {"a": 1}}
    checked = check_content("User", content, push_tag_codes=False)
    assert checked == content and checked is not content


def test_listing_filters_before_paging() -> None:
    tasks = [
        Task(i, APP, "All", int(T0) + 100 - i, int(T0) + i, {"OfflinePushInfo": {"Title": f"t{i}"}}) for i in range(5)
    ]
    query = ListQuery(offset=1, want=2, order_by="schedat", asc=True, begin=int(T0) + 1, end=int(T0) + 4)
    total, page = select(tasks, query, "createat")
    assert (total, [task.task_id for task in page]) == (4, [3, 2])


# --- the pipeline on a frozen clock ------------------------------------------------------------------


@pytest.fixture
def frozen() -> FrozenTime:
    return FrozenTime()


def _core(frozen: FrozenTime, **overrides: Any) -> EmulatorCore:
    settings = EmulatorSettings(**{"sdkappid": APP, "key": KEY, **overrides})
    return EmulatorCore(settings, clock=Clock(frozen, frozen))


def _request(api: str, body: dict[str, Any]) -> Request:
    query = {
        "sdkappid": str(APP),
        "identifier": "administrator",
        "usersig": usersig.generate(APP, KEY, "administrator", 86400, int(T0)),
        "random": "1",
        "contenttype": "json",
    }
    return Request("POST", f"/v4/timpush/{api}", query, json.dumps({"Sdkappid": APP, **body}).encode())


def _code(core: EmulatorCore, api: str, body: dict[str, Any]) -> int:
    code: int = json.loads(core.serve(_request(api, body)).body)["ErrorCode"]
    return code


def test_rate_limit_on_a_frozen_clock(frozen: FrozenTime) -> None:
    core = _core(frozen)
    assert [_code(core, "get_sched_task", {"TaskID": 1}) for _ in range(7)] == [90104] * 5 + [60007] * 2
    frozen.t += 0.999
    assert _code(core, "get_sched_task", {"TaskID": 1}) == 60007
    frozen.t += 0.001
    assert _code(core, "get_sched_task", {"TaskID": 1}) == 90104


def test_refused_modify_changes_nothing(frozen: FrozenTime) -> None:
    core = _core(frozen, rate_limit=0)
    reply = core.serve(
        _request("add_sched_task", {"Type": "User", "SchedAt": format_time(T0 + 60), "Content": {"To_Account": ["u"]}})
    )
    task_id = json.loads(reply.body)["TaskID"]
    before = core.tasks()
    # SchedAt is fine, Content is not: neither may be applied
    body = {"TaskID": task_id, "Type": "User", "SchedAt": format_time(T0 + 120), "Content": {"To_Account": []}}
    assert _code(core, "modify_sched_task", body) == 90104
    assert core.tasks() == before


def test_python_api_results_are_copies(frozen: FrozenTime) -> None:
    core = _core(frozen)
    core.serve(_request("add_sched_task", {"Type": "All", "SchedAt": format_time(T0 + 60), "Content": {"Ext": "x"}}))
    # When a caller changes what it was given
    content, query = core.tasks()[0]["Content"], core.requests()[0]["query"]
    assert isinstance(content, dict) and isinstance(query, dict)
    content["Ext"], query["sdkappid"] = "changed", "0"
    # Then the emulator's own state is untouched
    assert core.tasks()[0]["Content"] == {"Ext": "x", "MsgRandom": content["MsgRandom"]}
    assert core.requests()[0]["query"]["sdkappid"] == str(APP)  # type: ignore[index]


def test_settings_refuse_bad_values_and_hide_the_key() -> None:
    bads: list[dict[str, Any]] = [
        {"key": ""},
        {"admins": ()},
        {"rate_limit": -1},
        {"content_mode": "patch"},
        {"list_filter_on": "x"},
        {"other_apps": ((1400000001, "other"),)},  # the main app again
        {"other_apps": ((1400000002, "k2"), (1400000002, "k3"))},
    ]
    for bad in bads:
        with pytest.raises(ValueError):
            EmulatorSettings(**{"key": KEY, **bad})
    assert KEY not in repr(EmulatorSettings(key=KEY))


@pytest.mark.parametrize(("ahead", "code"), [(-1, 90104), (0, 90104), (1, 0)])
def test_sched_at_must_be_strictly_in_the_future(frozen: FrozenTime, ahead: int, code: int) -> None:
    core = _core(frozen)
    body = {"Type": "All", "SchedAt": format_time(T0 + ahead), "Content": {}}
    assert _code(core, "add_sched_task", body) == code
