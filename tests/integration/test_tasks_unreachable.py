"""``timpush tasks`` when the server cannot be reached: a bounded wait per call and the real code (-1, -2).

Before: three 10 s read timeouts used a call's whole budget and the pacer's 60007 was reported instead.
The waits are shortened here (READ_WAIT, the back-off); what is asserted is the number of attempts the
server saw and the code, and pytest's timeout is the generous bound on the whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from handler import runtime
from handler.im import retry
from tests.fakes.moto_sqs import free_port
from tests.fakes.silent_server import SilentServer
from timpush import tasks
from timpush.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "READ_WAIT", 0.5)  # the client's shortest read timeout
    monkeypatch.setattr(retry, "BACKOFF_BASE", 0.01)


@pytest.fixture
def silent(handler_env: object, short_waits: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentServer]:
    with SilentServer() as server:
        monkeypatch.setenv("IM_ENDPOINT", server.url)
        runtime.reset()
        yield server


def test_get_from_a_server_that_never_answers_is_timed_out_and_stops(
    silent: SilentServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a server that accepts and never answers, and two attempts per call
    monkeypatch.setenv("IM_MAX_ATTEMPTS", "2")
    runtime.reset()
    # When three tasks are read
    code = main(["tasks", "get", "11", "12", "13", "--json"])
    out, err = capsys.readouterr()
    # Then the first call is tried twice and fails with -2; the other two are not tried, and say so
    assert code == 1
    assert silent.accepted == 2
    assert "timpush tasks: 11: error -2 (timed out): ReadTimeout" in err and "gave up after 2 attempts" in err
    assert "stopped: the server does not answer; not read: 12 13" in err
    assert "60007" not in err and "Traceback" not in err
    document = json.loads(out)
    assert [(e["TaskID"], e["ErrorCode"]) for e in document["errors"]] == [(11, -2)]
    assert document["not_read"] == [12, 13] and document["tasks"] == []


def test_a_budget_without_room_for_another_attempt_ends_with_the_servers_code_not_60007(
    silent: SilentServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a budget that holds one whole attempt (0.5 s) and not a second, with four attempts allowed
    monkeypatch.setattr(tasks, "CALL_BUDGET", 0.8)
    # When the tasks are listed
    code = main(["tasks", "list"])
    err = capsys.readouterr().err
    # Then one attempt was made and its own error is reported, not the pacer's deadline
    assert code == 1
    assert silent.accepted == 1
    assert "timpush tasks: list: error -2 (timed out)" in err
    assert "60007" not in err and "rate limit" not in err


def test_a_refused_connection_is_connection_failed_after_every_attempt(
    handler_env: object, short_waits: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an endpoint nothing listens on
    monkeypatch.setenv("IM_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("IM_MAX_ATTEMPTS", "3")
    runtime.reset()
    # When a task is read, then listed
    get_code = main(["tasks", "get", "11"])
    get_err = capsys.readouterr().err
    list_code = main(["tasks", "list", "--json"])
    list_err = capsys.readouterr().err
    # Then each fails with -1 after its three attempts
    assert (get_code, list_code) == (1, 1)
    assert "timpush tasks: 11: error -1 (connection failed or dropped): ConnectionError" in get_err
    assert "gave up after 3 attempts" in get_err and "not read" not in get_err  # nothing else was asked
    assert "timpush tasks: list: error -1 (connection failed or dropped)" in list_err
    assert "60007" not in get_err + list_err
