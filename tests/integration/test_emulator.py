"""The IM emulator over real HTTP on loopback: URL and UserSig checks, the five APIs, the task
state machine, the rate limit, injected faults, the admin paths and the command line."""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from handler.im import usersig
from timpush.emulator import Emulator, EmulatorSettings, Fault
from timpush.emulator import cli as emulator_cli
from timpush.emulator.validation import format_time, parse_time

pytestmark = pytest.mark.integration

APP = 1400000001
OTHER_APP = 1400000002
KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
OTHER_KEY = "0f0e0d0c0b0a09080706050403020100"
ADMIN = "administrator"
TIMEOUT = (2, 5)


def _settings(**overrides: Any) -> EmulatorSettings:
    # Rate limit off by default so the many calls of a test never trip it; its own tests turn it on.
    base: dict[str, Any] = {
        "sdkappid": APP,
        "key": KEY,
        "admins": (ADMIN, "ops"),
        "rate_limit": 0,
        "other_apps": ((OTHER_APP, OTHER_KEY),),
    }
    return EmulatorSettings(**{**base, **overrides})


class Client:
    """Signs and sends like the real client would, with one pooled session."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.session = requests.Session()
        self.session.trust_env = False  # never route loopback through a proxy from the environment

    def query(self, identifier: str = ADMIN, sdkappid: int = APP, key: str = KEY) -> dict[str, str]:
        sig = usersig.generate(sdkappid, key, identifier, 86400, int(self.emu.now()))
        return {
            "sdkappid": str(sdkappid),
            "identifier": identifier,
            "usersig": sig,
            "random": "99999999",
            "contenttype": "json",
        }

    def post(self, api: str, data: bytes, params: dict[str, str] | None = None, **kw: Any) -> requests.Response:
        url = f"{self.emu.url}/v4/timpush/{api}"
        return self.session.post(url, params=self.query() if params is None else params, data=data, **kw)

    def call(self, api: str, body: dict[str, Any], params: dict[str, str] | None = None) -> dict[str, Any]:
        response = self.post(api, json.dumps({"Sdkappid": APP, **body}).encode(), params, timeout=TIMEOUT)
        assert response.status_code == 200
        document: dict[str, Any] = response.json()
        return document

    def admin(self, method: str, path: str, payload: object = None) -> requests.Response:
        url = f"{self.emu.url}/_emulator/{path}"
        data = None if payload is None else json.dumps(payload)
        return self.session.request(method, url, data=data, timeout=TIMEOUT)

    def sched(self, ahead: float) -> str:
        return format_time(self.emu.now() + ahead)

    def add(self, task_type: str = "All", ahead: float = 3600, **content: Any) -> int:
        content = content or {"OfflinePushInfo": {"Title": "Launch", "Desc": "It is here"}}
        answer = self.call("add_sched_task", {"Type": task_type, "SchedAt": self.sched(ahead), "Content": content})
        assert answer["ErrorCode"] == 0, answer
        task_id: int = answer["TaskID"]
        return task_id

    def get(self, task_id: int) -> dict[str, Any]:
        answer = self.call("get_sched_task", {"TaskID": task_id})
        assert answer["ErrorCode"] == 0, answer
        info: dict[str, Any] = answer["TaskInfo"]
        return info


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[Emulator]:
    with Emulator(_settings()) as emu:
        yield emu


@pytest.fixture
def client(shared_emulator: Emulator) -> Iterator[Client]:
    shared_emulator.reset()  # each test starts from no tasks, faults, log or clock offset
    c = Client(shared_emulator)
    yield c
    c.session.close()


@pytest.fixture
def make_client() -> Iterator[Any]:
    """A client of a fresh emulator with its own settings (and faults at start)."""
    started: list[tuple[Emulator, Client]] = []

    def make(faults: tuple[Fault, ...] = (), **overrides: Any) -> Client:
        emu = Emulator(_settings(**overrides), faults=faults).start()
        started.append((emu, Client(emu)))
        return started[-1][1]

    yield make
    for emu, c in started:
        c.session.close()
        emu.stop()


# --- URL, method, body framing ---------------------------------------------------------------


def _without(name: str) -> Any:
    return lambda q: {k: v for k, v in q.items() if k != name}


def _with(**changes: str) -> Any:
    return lambda q: {**q, **changes}


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (_without("sdkappid"), 60012),
        (_with(sdkappid=""), 60012),
        (_with(sdkappid="14x"), 60002),
        (_without("contenttype"), 60002),
        (_with(contenttype="JSON"), 60002),
        (_without("random"), 60002),
        (_with(random="4294967296"), 60002),
        (_with(random="-1"), 60002),
        (_with(random="1.5"), 60002),
        (_with(sdkappid="1400000099"), 70020),
        (_without("identifier"), 60004),
        (_without("usersig"), 70002),
        (_with(usersig="not*a*sig"), 70003),
    ],
)
def test_bad_url_gets_its_code(client: Client, mutate: Any, code: int) -> None:
    answer = client.call("get_sched_task", {"TaskID": 1}, params=mutate(client.query()))
    assert (answer["ActionStatus"], answer["ErrorCode"]) == ("FAIL", code)
    assert "TaskInfo" not in answer


@pytest.mark.parametrize("random_value", ["0", "4294967295"])
def test_random_bounds_are_accepted(client: Client, random_value: str) -> None:
    task_id = client.add()
    answer = client.call("get_sched_task", {"TaskID": task_id}, params={**client.query(), "random": random_value})
    assert answer["ErrorCode"] == 0


def test_usersig_checks_give_the_server_codes(client: Client) -> None:
    now = int(client.emu.now())
    cases = {
        # signed for another app the emulator also serves, sent with this app's sdkappid
        70014: usersig.generate(OTHER_APP, OTHER_KEY, ADMIN, 86400, now),
        70013: usersig.generate(APP, KEY, "ops", 86400, now),
        70001: usersig.generate(APP, KEY, ADMIN, 60, now - 120),
        70009: usersig.generate(APP, "another-key", ADMIN, 86400, now),
    }
    for code, sig in cases.items():
        answer = client.call("get_sched_task", {"TaskID": 1}, params={**client.query(), "usersig": sig})
        assert answer["ErrorCode"] == code, (code, answer)


def test_usersig_expires_on_the_emulated_clock(client: Client) -> None:
    params = client.query()  # valid for a day from the emulated now
    assert client.call("list_sched_task", _list_body(), params)["ErrorCode"] == 0
    client.emu.advance(86401)
    assert client.call("list_sched_task", _list_body(), params)["ErrorCode"] == 70001


def test_valid_sig_of_a_non_admin_is_60010(client: Client) -> None:
    answer = client.call("get_sched_task", {"TaskID": 1}, params=client.query(identifier="alice"))
    assert answer["ErrorCode"] == 60010


def test_another_served_app_has_its_own_key_and_tasks(client: Client) -> None:
    task_id = client.add()
    params = client.query(sdkappid=OTHER_APP, key=OTHER_KEY)
    body = json.dumps({"Sdkappid": OTHER_APP, "TaskID": task_id}).encode()
    answer = client.post("get_sched_task", body, params, timeout=TIMEOUT).json()
    # The task exists, but in the other app: for this one the TaskID is invalid
    assert (answer["ErrorCode"], answer["ErrorInfo"]) == (90104, "invalid TaskID")


def test_unknown_path_is_60009_with_http_200(client: Client) -> None:
    for path in ("/v4/timpush/cancel_sched_task", "/v4/timpush/add_sched_task/", "/elsewhere"):
        response = client.session.post(client.emu.url + path, params=client.query(), data=b"{}", timeout=TIMEOUT)
        assert (response.status_code, response.json()["ErrorCode"]) == (200, 60009), path


def test_non_post_is_60002(client: Client) -> None:
    url = f"{client.emu.url}/v4/timpush/get_sched_task"
    for method in ("GET", "PUT", "DELETE"):
        response = client.session.request(method, url, params=client.query(), timeout=TIMEOUT)
        assert (response.status_code, response.json()["ErrorCode"]) == (200, 60002), method


@pytest.mark.parametrize("data", [b"", b"   ", b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_body_that_is_not_a_json_object_is_60003(client: Client, data: bytes) -> None:
    response = client.post("get_sched_task", data, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["ErrorCode"] == 60003


@pytest.mark.parametrize("sdkappid", [None, "1400000001", OTHER_APP, True])
def test_body_sdkappid_must_equal_the_url_one(client: Client, sdkappid: object) -> None:
    body = {"TaskID": 1} if sdkappid is None else {"TaskID": 1, "Sdkappid": sdkappid}
    response = client.post("get_sched_task", json.dumps(body).encode(), timeout=TIMEOUT)
    answer = response.json()
    assert (answer["ErrorCode"], answer["ErrorInfo"].split(":")[0]) == (90104, "invalid Sdkappid")


def test_connection_is_kept_alive(client: Client) -> None:
    host, port = client.emu.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.connect()
    conn.auto_open = 0  # a closed connection must raise, not silently reconnect
    try:
        for _ in range(3):
            conn.request("POST", "/v4/timpush/list_sched_task?x=1", body=b"{}")
            response = conn.getresponse()
            assert response.getheader("Content-Length") == str(len(response.read()))
    finally:
        conn.close()


# --- add and its validation --------------------------------------------------------------------


def _content(task_type: str) -> dict[str, Any]:
    push = {"OfflinePushInfo": {"Title": "T", "Desc": "D"}}
    extras: dict[str, dict[str, Any]] = {"User": {"To_Account": ["u1"]}, "Tag": {"Condition": {"TagsAnd": ["a"]}}}
    extra = extras.get(task_type, {})
    return {**push, **extra}


@pytest.mark.parametrize(
    ("task_type", "sched", "content", "field"),
    [
        ("Everyone", "+", _content("All"), "Type"),
        (None, "+", _content("All"), "Type"),
        ("All", "2030-1-01 10:00:00", _content("All"), "SchedAt"),
        ("All", "2030-01-01T10:00:00", _content("All"), "SchedAt"),
        ("All", "2030-01-01 10:00:00\n", _content("All"), "SchedAt"),
        ("All", "2030-02-30 10:00:00", _content("All"), "SchedAt"),
        ("All", "2030-01-01 24:00:00", _content("All"), "SchedAt"),
        ("All", None, _content("All"), "SchedAt"),
        ("All", "-", _content("All"), "SchedAt"),
        ("All", "+", None, "Content"),
        ("All", "+", ["x"], "Content"),
        ("All", "+", {**_content("All"), "To_Account": ["u1"]}, "To_Account"),
        ("All", "+", {**_content("All"), "Condition": {"TagsOr": ["a"]}}, "Condition"),
        ("User", "+", _content("All"), "To_Account"),
        ("User", "+", {"To_Account": []}, "To_Account"),
        ("User", "+", {"To_Account": [f"u{i}" for i in range(501)]}, "To_Account"),
        ("User", "+", {"To_Account": ["u1", 7]}, "To_Account"),
        ("User", "+", {"To_Account": "u1"}, "To_Account"),
        ("Tag", "+", _content("All"), "Condition"),
        ("Tag", "+", {"Condition": {"AttrsAnd": {"city": "x"}}}, "Condition"),
        ("Tag", "+", {"Condition": {"TagsOr": [f"t{i}" for i in range(11)]}}, "TagsOr"),
        ("Tag", "+", {"Condition": {"TagsAnd": ["ok", ""]}}, "TagsAnd"),
        ("Tag", "+", {"Condition": {"TagsNot": ["x" * 51]}}, "TagsNot"),
        ("Tag", "+", {"Condition": {"TagsAnd": ["a"], "TagsOr": ["a", "b"]}}, "TagsOr"),
        ("Tag", "+", {"Condition": {"TagsAnd": ["a"], "AttrsOr": {"k": "v"}}}, "attributes"),
        ("All", "+", {"OfflinePushInfo": {"Title": 5}}, "OfflinePushInfo.Title"),
        ("All", "+", {"OfflinePushInfo": "T"}, "OfflinePushInfo"),
        ("All", "+", {"MsgRandom": -1}, "MsgRandom"),
        ("All", "+", {"MsgRandom": 2**32}, "MsgRandom"),
    ],
)
def test_add_refuses_invalid_input_with_90104_naming_the_field(
    client: Client, task_type: object, sched: object, content: object, field: str
) -> None:
    sched_at = {"+": client.sched(3600), "-": client.sched(-60)}.get(str(sched), sched)
    answer = client.call("add_sched_task", {"Type": task_type, "SchedAt": sched_at, "Content": content})
    assert (answer["ActionStatus"], answer["ErrorCode"], answer["TaskID"]) == ("FAIL", 90104, 0)
    assert field in answer["ErrorInfo"]
    assert client.emu.tasks() == []


@pytest.mark.parametrize(
    ("condition", "code"),
    [
        ({"TagsOr": [f"t{i}" for i in range(11)]}, 90032),
        ({"TagsAnd": [""]}, 90040),
        ({"TagsAnd": ["x" * 51]}, 90020),
        ({"TagsAnd": ["a"], "TagsOr": ["a"]}, 90022),
        ({"TagsAnd": ["a"], "AttrsAnd": {"k": "v"}}, 90039),
    ],
)
def test_tag_rules_can_answer_the_push_codes(make_client: Any, condition: dict[str, Any], code: int) -> None:
    c = make_client(push_tag_codes=True)
    answer = c.call("add_sched_task", {"Type": "Tag", "SchedAt": c.sched(60), "Content": {"Condition": condition}})
    assert answer["ErrorCode"] == code


def test_tag_limits_themselves_are_accepted(client: Client) -> None:
    tags = [f"t{i}" for i in range(9)] + ["é" * 25]  # ten tags, the last one exactly 50 bytes
    assert client.add("Tag", Condition={"TagsOr": tags, "TagsNot": ["z"]}) > 0
    assert client.add("User", To_Account=[f"u{i}" for i in range(500)]) > 0


def test_add_past_code_and_lead_time_are_settings(make_client: Any) -> None:
    c = make_client(add_past_code=90110, max_lead_days=1)
    for ahead in (0, -5, 86400 + 1):
        body = {"Type": "All", "SchedAt": c.sched(ahead), "Content": _content("All")}
        answer = c.call("add_sched_task", body)
        assert (answer["ErrorCode"], answer["TaskID"]) == (90110, 0), ahead
    assert c.add(ahead=86400) > 0


def test_task_ids_rise_from_a_seeded_base(make_client: Any) -> None:
    first, again, other = make_client(seed=3), make_client(seed=3), make_client(seed=4)
    ids = [first.add(), first.add(), first.add()]
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2] and ids[0] > 0
    assert again.add() == ids[0]
    assert other.add() != ids[0]


# --- add / get / modify / delete round trip -----------------------------------------------------


def test_round_trip_add_get_modify_delete(client: Client) -> None:
    # Given a task added one hour ahead
    sched_at = client.sched(3600)
    created_at = client.emu.now()
    content = {"From_Account": ADMIN, "OfflinePushInfo": {"Title": "Launch", "Desc": "Soon"}}
    answer = client.call("add_sched_task", {"Type": "All", "SchedAt": sched_at, "Content": content})
    assert set(answer) == {"ActionStatus", "ErrorCode", "ErrorInfo", "TaskID"}
    assert (answer["ActionStatus"], answer["ErrorInfo"]) == ("OK", "")
    task_id = answer["TaskID"]
    # Then get shows it pending, with Title/Desc lifted from OfflinePushInfo and a MsgRandom filled in
    info = client.get(task_id)
    assert {k: info[k] for k in ("TaskID", "Sdkappid", "Type", "SchedAt", "Title", "Desc", "Status")} == {
        "TaskID": task_id, "Sdkappid": APP, "Type": "All", "SchedAt": sched_at,
        "Title": "Launch", "Desc": "Soon", "Status": "pending",
    }  # fmt: skip
    assert abs(parse_time(info["CreateAt"], "CreateAt") - created_at) <= 2
    assert (info["DispatchSuccess"], info["DispatchErr"], info["PushTaskID"]) == (0, "", "")
    assert isinstance(info["Content"].pop("MsgRandom"), int)
    assert info["Content"] == content
    # When it is modified
    new_sched = client.sched(7200)
    body = {"TaskID": task_id, "Type": "All", "SchedAt": new_sched, "Content": {"OfflinePushInfo": {"Title": "New"}}}
    answer = client.call("modify_sched_task", body)
    assert (answer["ErrorCode"], answer["TaskID"]) == (0, task_id)
    info = client.get(task_id)
    assert (info["SchedAt"], info["Title"], info["Desc"]) == (new_sched, "New", "")
    # When it is deleted, it is gone: get and a second delete say the TaskID is invalid
    answer = client.call("delete_sched_task", {"TaskID": task_id, "Type": "All"})
    assert (answer["ErrorCode"], answer["TaskID"]) == (0, task_id)
    for api, body in (
        ("get_sched_task", {"TaskID": task_id}),
        ("delete_sched_task", {"TaskID": task_id, "Type": "All"}),
    ):
        answer = client.call(api, body)
        assert (answer["ErrorCode"], answer["ErrorInfo"]) == (90104, "invalid TaskID")
    assert client.emu.tasks() == []


def test_msg_random_sent_is_kept(client: Client) -> None:
    task_id = client.add(MsgRandom=12345, OfflinePushInfo={"Title": "x"})
    assert client.get(task_id)["Content"]["MsgRandom"] == 12345


@pytest.mark.parametrize(
    ("body", "info"),
    [
        ({"Type": "All", "SchedAt": "+"}, "invalid TaskID"),
        ({"TaskID": 0, "Type": "All", "SchedAt": "+"}, "invalid TaskID"),
        ({"TaskID": True, "Type": "All", "SchedAt": "+"}, "invalid TaskID"),
        ({"TaskID": "ID as text", "Type": "All", "SchedAt": "+"}, "invalid TaskID"),
        ({"TaskID": "other", "Type": "All", "SchedAt": "+"}, "invalid TaskID"),
        ({"TaskID": "ID", "Type": "User", "SchedAt": "+"}, "invalid Type"),
        ({"TaskID": "ID", "Type": "all", "SchedAt": "+"}, "invalid Type"),
        ({"TaskID": "ID", "Type": "All"}, "SchedAt or Content is required"),
        ({"TaskID": "ID", "Type": "All", "SchedAt": "2030-13-01 00:00:00"}, "invalid SchedAt"),
        ({"TaskID": "ID", "Type": "All", "Content": None}, "invalid Content"),
        ({"TaskID": "ID", "Type": "All", "Content": {"To_Account": ["u"]}}, "To_Account"),
    ],
)
def test_modify_refusals_are_90104_and_change_nothing(client: Client, body: dict[str, Any], info: str) -> None:
    task_id = client.add()
    before = client.emu.tasks()
    placeholders = {"ID": task_id, "ID as text": str(task_id), "other": task_id + 1000, "+": client.sched(60)}
    body = {k: placeholders.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    answer = client.call("modify_sched_task", body)
    assert (answer["ErrorCode"], answer["TaskID"]) == (90104, 0)
    assert info in answer["ErrorInfo"]
    assert client.emu.tasks() == before


def test_modify_to_a_past_time_is_90110(client: Client) -> None:
    task_id = client.add()
    for sched_at in (client.sched(-1), client.sched(0)):
        answer = client.call("modify_sched_task", {"TaskID": task_id, "Type": "All", "SchedAt": sched_at})
        assert (answer["ErrorCode"], answer["TaskID"]) == (90110, 0)


def test_refuse_past_off_accepts_a_past_time(make_client: Any) -> None:
    c = make_client(refuse_past=False, dispatch_seconds=600)
    task_id = c.add(ahead=-10)
    assert c.get(task_id)["Status"] == "dispatching"


def test_delete_checks_type(client: Client) -> None:
    task_id = client.add()
    answer = client.call("delete_sched_task", {"TaskID": task_id, "Type": "Tag"})
    assert (answer["ErrorCode"], answer["TaskID"]) == (90104, 0)
    assert client.get(task_id)["Status"] == "pending"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("merge", {"From_Account": ADMIN, "Ext": "keep", "OfflinePushInfo": {"Title": "New"}}),
        ("replace", {"OfflinePushInfo": {"Title": "New"}}),
    ],
)
def test_content_mode_merge_or_replace(make_client: Any, mode: str, expected: dict[str, Any]) -> None:
    c = make_client(content_mode=mode)
    task_id = c.add(From_Account=ADMIN, Ext="keep", OfflinePushInfo={"Title": "Old", "Desc": "Old"}, MsgRandom=7)
    body = {"TaskID": task_id, "Type": "All", "Content": {"OfflinePushInfo": {"Title": "New"}}}
    assert c.call("modify_sched_task", body)["ErrorCode"] == 0
    content = c.get(task_id)["Content"]
    assert isinstance(content.pop("MsgRandom"), int)
    assert content == expected


@pytest.mark.parametrize(("mode", "code"), [("merge", 0), ("replace", 90104)])
def test_user_task_content_is_checked_after_merge_or_replace(make_client: Any, mode: str, code: int) -> None:
    c = make_client(content_mode=mode)
    task_id = c.add("User", To_Account=["u1"], OfflinePushInfo={"Title": "x"})
    body = {"TaskID": task_id, "Type": "User", "Content": {"OfflinePushInfo": {"Title": "y"}}}
    assert c.call("modify_sched_task", body)["ErrorCode"] == code


# --- state machine --------------------------------------------------------------------------------


def test_state_machine_follows_the_clock(client: Client) -> None:
    # Given a pending task due in 60 s (dispatch takes 5 s by default)
    task_id = client.add(ahead=60)
    modify = {"TaskID": task_id, "Type": "All", "Content": {"OfflinePushInfo": {"Title": "x"}}}
    delete = {"TaskID": task_id, "Type": "All"}
    # When its time comes, it is dispatching: modify and delete are refused with 90107
    client.emu.advance(60)
    assert client.get(task_id)["Status"] == "dispatching"
    answer = client.call("modify_sched_task", modify)
    assert (answer["ErrorCode"], answer["ErrorInfo"], answer["TaskID"]) == (90107, "modify failed: task dispatching", 0)
    answer = client.call("delete_sched_task", delete)
    assert (answer["ErrorCode"], answer["ErrorInfo"]) == (90107, "delete failed: task dispatching")
    # When dispatch_seconds have passed, it is dispatched: 90106, and the push is recorded
    client.emu.advance(5)
    info = client.get(task_id)
    assert (info["Status"], info["DispatchSuccess"]) == ("dispatched", 1)
    assert info["PushTaskID"].startswith("push_")
    answer = client.call("modify_sched_task", modify)
    assert (answer["ErrorCode"], answer["ErrorInfo"]) == (90106, "modify failed: task dispatched")
    answer = client.call("delete_sched_task", delete)
    assert (answer["ErrorCode"], answer["ErrorInfo"]) == (90106, "delete failed: task dispatched")
    assert client.get(task_id)["Content"]["OfflinePushInfo"] == {"Title": "Launch", "Desc": "It is here"}


def test_user_task_push_id_is_a_batch_id(make_client: Any) -> None:
    c = make_client(dispatch_seconds=0)
    task_id = c.add("User", ahead=10, To_Account=["u1"])
    c.emu.advance(10)
    assert c.get(task_id)["PushTaskID"].startswith("batch_")


# --- list -------------------------------------------------------------------------------------------


def _list_body(**fields: Any) -> dict[str, Any]:
    return {"Offset": 0, "Want": 20, "OrderBy": "createat", "Asc": True, **fields}


def _three_tasks(c: Client) -> list[int]:
    """Created one hour apart, scheduled in the reverse order."""
    ids = []
    for n, (title, ahead) in enumerate([("Alpha sale", 30), ("Beta launch", 20), ("gamma SALE", 10)]):
        ids.append(c.add(ahead=86400 * ahead, OfflinePushInfo={"Title": title, "Desc": f"n{n}"}))
        c.emu.advance(3600)
    return ids


def test_list_orders_pages_and_counts(client: Client) -> None:
    a, b, g = _three_tasks(client)

    def listed(**fields: Any) -> tuple[int, list[int]]:
        answer = client.call("list_sched_task", _list_body(**fields))
        assert answer["ErrorCode"] == 0, answer
        return answer["Total"], [task["TaskID"] for task in answer["Tasks"]]

    assert listed() == (3, [a, b, g])
    assert listed(Asc=False) == (3, [g, b, a])
    assert listed(OrderBy="schedAt") == (3, [g, b, a])
    assert listed(OrderBy="SCHEDAT", Asc=False) == (3, [a, b, g])
    assert listed(Offset=1, Want=1) == (3, [b])
    assert listed(Offset=5) == (3, [])
    assert listed(Keyword="sale") == (2, [a, g])
    assert listed(Keyword="n1") == (1, [b])


def test_list_tasks_are_task_info(client: Client) -> None:
    task_id = client.add()
    answer = client.call("list_sched_task", _list_body())
    assert answer["Tasks"] == [client.get(task_id)]


def test_list_time_range_filters_on_createat_by_default(client: Client) -> None:
    a, b, _ = _three_tasks(client)
    start = client.emu.now() - 3 * 3600
    body = _list_body(BeginTime=format_time(start - 5), EndTime=format_time(start + 3600 + 5))
    answer = client.call("list_sched_task", body)
    assert (answer["Total"], [t["TaskID"] for t in answer["Tasks"]]) == (2, [a, b])


def test_list_time_range_can_filter_on_schedat(make_client: Any) -> None:
    c = make_client(list_filter_on="schedat")
    _, b, g = _three_tasks(c)
    body = _list_body(BeginTime=format_time(c.emu.now()), EndTime=format_time(c.emu.now() + 25 * 86400))
    answer = c.call("list_sched_task", body)
    assert (answer["Total"], [t["TaskID"] for t in answer["Tasks"]]) == (2, [b, g])


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"Want": 0}, "Want"),
        ({"Want": "5"}, "Want"),
        ({"Offset": -1}, "Offset"),
        ({"Offset": None}, "Offset"),
        ({"OrderBy": "title"}, "OrderBy"),
        ({"Asc": None}, "Asc"),
        ({"Asc": "true"}, "Asc"),
        ({"Keyword": 3}, "Keyword"),
        ({"BeginTime": "2030-01-01 00:00:00"}, "together"),
        ({"EndTime": "2030-01-01 00:00:00"}, "together"),
        ({"BeginTime": "2030-01-02 00:00:00", "EndTime": "2030-01-01 00:00:00"}, "later than EndTime"),
        ({"BeginTime": "2030-01-01 00:00:00", "EndTime": "2030-02-01 00:00:01"}, "exceeds 31 days"),
        ({"BeginTime": "2030-01-01", "EndTime": "2030-01-02 00:00:00"}, "BeginTime"),
    ],
)
def test_list_refusals(client: Client, fields: dict[str, Any], named: str) -> None:
    body = {k: v for k, v in _list_body(**fields).items() if v is not None}
    answer = client.call("list_sched_task", body)
    assert answer["ErrorCode"] == 90104
    assert named in answer["ErrorInfo"]
    assert "TaskID" not in answer and "Tasks" not in answer


def test_list_range_of_exactly_max_days_is_accepted(client: Client) -> None:
    body = _list_body(BeginTime="2030-01-01 00:00:00", EndTime="2030-02-01 00:00:00")
    assert client.call("list_sched_task", body)["ErrorCode"] == 0


# --- rate limit -----------------------------------------------------------------------------------


def test_sixth_request_within_a_second_is_60007(make_client: Any) -> None:
    c = make_client(rate_limit=5)
    codes = [c.call("list_sched_task", _list_body())["ErrorCode"] for _ in range(6)]
    answer = c.call("list_sched_task", _list_body())
    assert codes == [0, 0, 0, 0, 0, 60007]
    assert (answer["ErrorCode"], answer["ErrorInfo"]) == (60007, "REST API call frequency exceeds limit")
    # Per API and per app: get and the other app still have their budget
    assert c.call("get_sched_task", {"TaskID": 1})["ErrorCode"] == 90104
    other = json.dumps({"Sdkappid": OTHER_APP, **_list_body()}).encode()
    params = c.query(sdkappid=OTHER_APP, key=OTHER_KEY)
    assert c.post("list_sched_task", other, params, timeout=TIMEOUT).json()["ErrorCode"] == 0
    # One second later the window has moved on
    c.emu.advance(1.0)
    assert c.call("list_sched_task", _list_body())["ErrorCode"] == 0


def test_rate_limit_zero_is_off(client: Client) -> None:
    codes = {client.call("list_sched_task", _list_body())["ErrorCode"] for _ in range(12)}
    assert codes == {0}


# --- faults ---------------------------------------------------------------------------------------


def test_internal_error_fault_for_next_n_matching_requests(client: Client) -> None:
    task_id = client.add()
    client.emu.add_faults([Fault(kind="internal_error", count=2, api="modify_sched_task")])
    body = {"TaskID": task_id, "Type": "All", "SchedAt": client.sched(90)}
    assert client.get(task_id)["Status"] == "pending"  # another API is not affected
    for _ in range(2):
        answer = client.call("modify_sched_task", body)
        assert (answer["ErrorCode"], answer["TaskID"]) == (90105, 0)
    assert client.get(task_id)["SchedAt"] != body["SchedAt"]  # a faulted request changes nothing
    assert client.call("modify_sched_task", body)["ErrorCode"] == 0
    assert client.emu.faults() == []


@pytest.mark.parametrize(
    ("fault", "code", "has_task_id"),
    [
        (Fault("rate_limit"), 60007, False),
        (Fault("error", code=91000), 91000, True),
        (Fault("error", code=70001), 70001, False),
        (Fault("error", code=90106), 90106, True),
    ],
)
def test_error_faults_answer_their_code(client: Client, fault: Fault, code: int, has_task_id: bool) -> None:
    client.emu.add_faults([fault])
    answer = client.call("delete_sched_task", {"TaskID": 1, "Type": "All"})
    assert (answer["ActionStatus"], answer["ErrorCode"]) == ("FAIL", code)
    assert ("TaskID" in answer) == has_task_id
    assert client.call("delete_sched_task", {"TaskID": 1, "Type": "All"})["ErrorCode"] == 90104


def test_http_502_fault(client: Client) -> None:
    client.emu.add_faults([Fault("http_502")])
    response = client.post("list_sched_task", json.dumps({"Sdkappid": APP, **_list_body()}).encode(), timeout=TIMEOUT)
    assert response.status_code == 502
    with pytest.raises(ValueError):
        response.json()


def test_not_envelope_fault(client: Client) -> None:
    client.emu.add_faults([Fault("not_envelope")])
    response = client.post("list_sched_task", json.dumps({"Sdkappid": APP, **_list_body()}).encode(), timeout=TIMEOUT)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_drop_fault_closes_without_answer_then_serves_again(client: Client) -> None:
    client.call("list_sched_task", _list_body())  # warm the pooled connection, so the drop hits a reused one
    client.emu.add_faults([Fault("drop", api="list", count=2)])
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            client.call("list_sched_task", _list_body())
    assert client.call("list_sched_task", _list_body())["ErrorCode"] == 0


def test_slow_fault_delays_a_normal_answer(client: Client) -> None:
    client.emu.add_faults([Fault("slow", delay=0.3, count=2)])
    started = time.monotonic()
    assert client.call("list_sched_task", _list_body())["ErrorCode"] == 0
    assert time.monotonic() - started >= 0.3
    with pytest.raises(requests.ReadTimeout):
        client.post("list_sched_task", json.dumps({"Sdkappid": APP, **_list_body()}).encode(), timeout=(2, 0.1))
    # The server still answers (into the closed connection) once the delay is over, and logs it
    for _ in range(100):
        if len(client.emu.requests()) == 2:
            break
        time.sleep(0.02)
    assert [(entry["code"], entry["fault"]) for entry in client.emu.requests()] == [(0, "slow"), (0, "slow")]


def test_faults_fire_in_order(client: Client) -> None:
    client.emu.add_faults([Fault("error", code=91000), Fault("internal_error", api="get")])
    codes = [client.call("get_sched_task", {"TaskID": 1})["ErrorCode"] for _ in range(3)]
    assert codes == [91000, 90105, 90104]


def _fault_codes(c: Client, n: int) -> list[int]:
    return [c.call("get_sched_task", {"TaskID": 1})["ErrorCode"] for _ in range(n)]


def test_probability_fault_is_deterministic_with_a_seed(make_client: Any) -> None:
    fault = Fault("internal_error", probability=0.5)
    first, second = make_client(seed=7, faults=(fault,)), make_client(seed=7, faults=(fault,))
    codes = _fault_codes(first, 24)
    assert codes == _fault_codes(second, 24)
    assert set(codes) == {90105, 90104}


def test_probability_with_count_stops_after_count_hits(make_client: Any) -> None:
    c = make_client(faults=(Fault("internal_error", probability=0.5, count=3),))
    assert _fault_codes(c, 40).count(90105) == 3


def test_faults_given_at_start(make_client: Any) -> None:
    c = make_client(faults=(Fault("rate_limit", count=1),))
    assert _fault_codes(c, 2) == [60007, 90104]


# --- admin paths ------------------------------------------------------------------------------------


def test_request_log_records_everything_but_the_usersig(client: Client) -> None:
    params = client.query()
    client.call("get_sched_task", {"TaskID": 5}, params)
    client.post("get_sched_task", b"{bad", params, timeout=TIMEOUT)
    client.emu.add_faults([Fault("http_502"), Fault("drop")])
    client.post("list_sched_task", b"{}", params, timeout=TIMEOUT)
    with pytest.raises(requests.ConnectionError):
        client.post("list_sched_task", b"{}", params, timeout=TIMEOUT)
    response = client.admin("GET", "requests")
    assert params["usersig"] not in response.text
    log = response.json()["requests"]
    assert [(e["api"], e["http_status"], e["code"], e["fault"]) for e in log] == [
        ("get_sched_task", 200, 90104, None),
        ("get_sched_task", 200, 60003, None),
        ("list_sched_task", 502, None, "http_502"),
        ("list_sched_task", None, None, "drop"),
    ]
    assert log[0]["body"] == {"Sdkappid": APP, "TaskID": 5} and log[1]["body"] is None
    assert log[0]["query"] == {k: v for k, v in params.items() if k != "usersig"}
    assert abs(log[0]["t"] - client.emu.now()) < 5
    assert client.emu.requests() == log


def test_clearing_the_request_log(client: Client) -> None:
    client.call("get_sched_task", {"TaskID": 5})
    assert client.admin("DELETE", "requests").json() == {"cleared": 1}
    assert client.admin("GET", "requests").json() == {"requests": []}


def test_faults_through_the_admin_path(client: Client) -> None:
    posted = client.admin("POST", "faults", [{"kind": "error", "code": 91000, "count": 2, "api": "get"}])
    assert posted.json() == {"faults": [{"kind": "error", "code": 91000, "count": 2, "api": "get_sched_task",
                                         "delay": 1.0, "left": 2}]}  # fmt: skip
    client.admin("POST", "faults", {"faults": [{"kind": "drop", "api": "modify"}]})
    client.admin("POST", "faults", {"kind": "slow", "delay": 0})
    assert [f["kind"] for f in client.admin("GET", "faults").json()["faults"]] == ["error", "drop", "slow"]
    assert _fault_codes(client, 1) == [91000]
    assert client.admin("DELETE", "faults").json() == {"cleared": 3}
    assert _fault_codes(client, 1) == [90104]


@pytest.mark.parametrize(
    "payload",
    [{"kind": "boom"}, [{"kind": "error"}], [{"kind": "drop", "count": 0}], [{"kind": "drop", "colour": 1}], [1], "x"],
)
def test_bad_faults_are_400(client: Client, payload: object) -> None:
    response = client.admin("POST", "faults", payload)
    assert response.status_code == 400 and response.json()["error"]
    assert client.emu.faults() == []


def test_clock_through_the_admin_path(client: Client) -> None:
    before = client.admin("GET", "clock").json()
    after = client.admin("POST", "clock", {"advance": 3600}).json()
    assert after["offset"] - before["offset"] == 3600
    assert 3600 <= after["now"] - before["now"] < 3605
    assert after["utc"] == format_time(after["now"])
    for bad in ({"advance": -1}, {"advance": "1"}, {}, None):
        assert client.admin("POST", "clock", bad).status_code == 400


def test_tasks_and_reset_through_the_admin_path(client: Client) -> None:
    first_id = client.add()
    client.emu.add_faults([Fault("drop")])
    client.emu.advance(100)
    assert [t["TaskID"] for t in client.admin("GET", "tasks").json()["tasks"]] == [first_id]
    assert client.admin("POST", "reset").json() == {"reset": True}
    assert client.admin("GET", "tasks").json() == {"tasks": []}
    assert client.emu.faults() == [] and client.emu.requests() == []
    assert client.admin("GET", "clock").json()["offset"] == 0
    assert client.add() == first_id  # the seeded ID sequence starts over


def test_unknown_admin_path_and_method(client: Client) -> None:
    assert client.admin("GET", "nothing").status_code == 404
    assert client.admin("DELETE", "tasks").status_code == 405
    assert client.emu.requests() == []  # admin calls are not in the request log


# --- lifecycle and command line ---------------------------------------------------------------------


def test_stop_closes_idle_kept_alive_connections() -> None:
    emu = Emulator(_settings()).start()
    c = Client(emu)
    c.call("list_sched_task", _list_body())  # leaves a pooled connection open
    started = time.monotonic()
    emu.stop()
    emu.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(RuntimeError):
        _ = emu.url
    c.session.close()


def test_settings_repr_hides_every_key() -> None:
    text = repr(_settings())
    assert KEY not in text and OTHER_KEY not in text and "1400000001" in text


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    emulator_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_arguments() -> None:
    args = _parse("--admin", "a", "--admin", "b", "--fault", "error:code=91000:count=2:api=modify", "--fault", "drop")
    assert (args.host, args.port, args.sdkappid, args.admin) == ("127.0.0.1", 8080, 1400000001, ["a", "b"])
    assert args.fault == [Fault("error", code=91000, count=2, api="modify_sched_task"), Fault("drop")]
    with pytest.raises(SystemExit):
        _parse("--fault", "explode")


def test_cli_without_a_key_names_both_sources(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("IM_SECRET_KEY", raising=False)
    assert emulator_cli.run(_parse("--port", "0")) == 2
    err = capsys.readouterr().err
    assert "--key" in err and "IM_SECRET_KEY" in err


def test_cli_serves_until_stopped(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IM_SECRET_KEY", KEY)
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(emulator_cli.run(_parse("--port", "0"), stop)))
    thread.start()
    try:
        err = ""
        for _ in range(100):
            err += capsys.readouterr().err
            if "http://" in err:
                break
            time.sleep(0.02)
        url = err.split("serving ")[1].split()[0]
        assert KEY not in err and err.count("\n") == 1
        response = requests.post(f"{url}/v4/timpush/list_sched_task", data=b"{}", timeout=TIMEOUT)
        assert response.json()["ErrorCode"] == 60012  # it answers: here, that the URL lacks sdkappid
    finally:
        stop.set()
        thread.join(5)
    assert result == [0]
