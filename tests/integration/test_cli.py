"""The `timpush` command as a user runs it: separate processes, real stdout and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from handler.im.usersig import verify
from tests.fakes.moto_sqs import free_port
from tests.support.im import APP, KEY

ROOT = Path(__file__).resolve().parents[2]


def timpush(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
            cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("IM_", "DEAD_LETTER"))}
    return subprocess.run([sys.executable, "-m", "timpush.cli", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, input=stdin, cwd=cwd, timeout=120, check=False)


def test_demo_shows_the_whole_flow(tmp_path: Path) -> None:
    dead = tmp_path / "demo.jsonl"
    run = timpush("demo", "--dead-letters", str(dead))
    assert run.returncode == 0, run.stderr
    out = run.stdout
    # Given the tasks it created, it ran every sample and read the tasks back
    assert "created task 1234567890" in out and "Tasks read back with get_sched_task" in out
    # One message told step by step: validated, paced and signed, failed once, retried, succeeded
    assert "ErrorCode 90105 'internal error'" in out and "modify_sched_task, attempt 2" in out
    assert "succeeded after 2 attempt(s)" in out
    # A queue message older than an operator's change arrives late: superseded, nothing sent
    assert "delivered only now: 0 request(s) sent" in out and "the task keeps SchedAt 2031-09-09 09:00:00" in out
    # then two messages of one FIFO batch share their SentTimestamp: the queue's own order decides
    assert "2 request(s) sent\n  the task keeps SchedAt 2031-11-11 11:00:00: the queue's own order" in out
    for sample in [*(ROOT / "events").glob("*.json"), *(ROOT / "events" / "scf").glob("*.json")]:
        assert f"  {sample.stem} " in out, sample.stem
    assert "through handler.main_handler (Tencent SCF)" in out
    # And failures of each kind landed in the dead-letter file with their codes (7 from the SCF samples)
    assert f"Dead letters (15) in {dead}" in out and " 90105 retryable" in out
    # Then the retryable one was redriven once the server was healthy; the permanent ones stay
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert {d["error"]["code"] for d in letters} == {90104, 90106, 90110}
    assert "Traceback" not in run.stderr
    assert "2 succeeded, 0 superseded, 0 failed, 14 skipped, 0 not sent" in out  # the retryable ones came back
    # Last, two apps in one deployment: each applied on its own server, the second's 60007s paced it alone,
    # and a modification naming an unknown app was refused and dead-lettered
    assert "TaskID 1234567890: succeeded (ErrorCode 0)\n  TaskID 2000000001: succeeded (ErrorCode 0)\n" in out
    assert "app 1400000001's server saw [0]; app 1400000002's saw [60007, 60007, 0]" in out
    assert len(letters) == 15 and sum(d["source"]["kind"] == "scf" for d in letters) == 7
    assert letters[-1]["request"]["Sdkappid"] == 1400000009
    assert letters[-1]["error"]["info"].startswith("Sdkappid: 1400000009 is not an app this deployment serves")
    # It ends with one task's history: applied, superseded by that change, dead-lettered, applied again by redrive
    told = out[out.index("Who moved my push? The history of task 1234567895"):]
    rows = [[cell.strip() for cell in line.split("│")[1:9]] for line in told.splitlines() if line.startswith("│")]
    entries = [row for row in rows if row[0]]  # a wrapped cell goes on in a row of its own with no outcome
    assert [(row[0], row[2], row[7]) for row in entries] == [
        ("succeeded", "http", "0"), ("superseded", "sqs", "-7"), ("dead_lettered", "direct", "90105"),
        ("succeeded", "redrive", "0")]
    assert entries[1][6].startswith("SchedAt:") and entries[2][3] == entries[3][3]  # the same change, redriven


def test_invoke_reads_stdin_and_keeps_stdout_for_the_result(tmp_path: Path) -> None:
    env = {"IM_SECRET_KEY": KEY, "IM_SDKAPPID": str(APP), "IM_ENDPOINT": "http://127.0.0.1:9",
           "DEAD_LETTER": f"file:{tmp_path / 'dl.jsonl'}"}
    run = timpush("invoke", "-", env=env, stdin='{"TaskID": 5, "Type": "All", "SchedAt": "2001-01-01 00:00:00"}')
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["results"][0]["ErrorCode"] == 90110
    assert '"outcome":"dead_lettered"' in run.stderr  # the log line went to stderr
    assert KEY not in run.stdout + run.stderr


def test_invoke_refuses_what_lambda_would_not_deliver() -> None:
    run = timpush("invoke", "-", stdin='{"TaskID": 5, "Type": "All", "Content": {"x": NaN}}')
    assert run.returncode == 2 and "NaN is not JSON" in run.stderr


def test_invoke_names_a_bad_variable() -> None:
    run = timpush("invoke", "-", env={"IM_SECRET_KEY": KEY, "IM_SDKAPPID": str(APP), "IM_RATE_LIMIT": "fast"},
                  stdin="{}")
    assert run.returncode == 2 and "IM_RATE_LIMIT" in run.stderr and KEY not in run.stderr


def test_usersig_takes_the_key_from_stdin_only() -> None:
    run = timpush("usersig", "--sdkappid", str(APP), stdin=KEY + "\n")
    assert run.returncode == 0, run.stderr
    assert verify(run.stdout.strip(), APP, "administrator", KEY)
    missing = timpush("usersig", "--sdkappid", str(APP), stdin="")
    assert missing.returncode == 2 and "IM_SECRET_KEY" in missing.stderr


def test_emulator_with_sample_tasks_serves_what_the_samples_name(tmp_path: Path) -> None:
    # Given an emulator started by hand as the README shows, with the samples' tasks
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("IM_", "DEAD_LETTER"))}
    server = subprocess.Popen([sys.executable, "-m", "timpush.cli", "emulator", "--port", str(port),
                               "--sample-tasks"], env={**base, "IM_SECRET_KEY": KEY}, cwd=ROOT,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        for line in server.stderr:  # it announces itself once the tasks exist
            if "serving http://127.0.0.1" in line:
                break
        # When a sample is invoked against it
        env = {"IM_ENDPOINT": f"http://127.0.0.1:{port}", "IM_SECRET_KEY": KEY, "IM_SDKAPPID": str(APP),
               "DEAD_LETTER": f"file:{tmp_path / 'dl.jsonl'}"}
        direct = timpush("invoke", "events/direct.json", env=env)
        late = timpush("invoke", "events/http-api-v2-failing.json", env=env)
    finally:
        server.terminate()
        server.wait(timeout=10)
    # Then the tasks were there, the fourth already dispatched
    assert json.loads(direct.stdout)["succeeded"] == 2, direct.stderr
    assert json.loads(late.stdout)["statusCode"] == 409


def test_invoke_platform_scf_runs_main_handler(tmp_path: Path) -> None:
    env = {"IM_SECRET_KEY": KEY, "IM_SDKAPPID": str(APP), "IM_ENDPOINT": "http://127.0.0.1:9",
           "DEAD_LETTER": f"file:{tmp_path / 'dl.jsonl'}"}
    event = {"Type": "Timer", "TriggerName": "t", "Time": "2026-11-30T09:00:00Z",
             "Message": '{"TaskID": 5, "Type": "All", "SchedAt": "2001-01-01 00:00:00"}'}
    run = timpush("invoke", "--platform", "scf", "-", env=env, stdin=json.dumps(event))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["results"][0]["ErrorCode"] == 90110
    line = next(json.loads(text) for text in run.stderr.splitlines() if '"outcome"' in text)
    assert line["source"]["kind"] == "scf" and line["metrics"] == {"ModificationsDeadLettered": 1.0,
                                                                     "Failed_too_late": 1.0}
    assert '"_aws"' not in run.stdout + run.stderr  # no EMF document on SCF


def test_one_emulator_serves_two_apps_for_a_handler_configured_with_im_apps(tmp_path: Path) -> None:
    # Given an emulator serving two apps, each with its own key, as docs/secrets.md shows
    port, other, other_key = free_port(), 1400000002, "tp-cli-second-app-key-8e7d6c5b"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("IM_", "DEAD_LETTER"))}
    server = subprocess.Popen([sys.executable, "-m", "timpush.cli", "emulator", "--port", str(port), "--key", KEY,
                               "--app", f"{other}={other_key}", "--sample-tasks"], env=base, cwd=ROOT,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        for line in server.stderr:
            if "serving http://127.0.0.1" in line:
                assert f"for sdkappid {APP}, {other} " in line
                break
        url = f"http://127.0.0.1:{port}"
        apps = [{"SDKAppID": APP, "Key": KEY, "Endpoint": url}, {"SDKAppID": other, "Key": other_key, "Endpoint": url}]
        env = {"IM_APPS": json.dumps(apps), "DEAD_LETTER": f"file:{tmp_path / 'dl.jsonl'}"}
        # When one payload names the first app, the second (which has no such task) and none
        payload = [{"Sdkappid": APP, "TaskID": 1234567890, "Type": "All", "SchedAt": "2031-01-01 00:00:00"},
                   {"Sdkappid": other, "TaskID": 1234567890, "Type": "All", "SchedAt": "2031-01-01 00:00:00"},
                   {"TaskID": 1234567890, "Type": "All", "SchedAt": "2031-01-01 00:00:00"}]
        run = timpush("invoke", "-", env=env, stdin=json.dumps(payload))
    finally:
        server.terminate()
        server.wait(timeout=10)
    # Then the first applies; the second reaches its own app, signed with its own key, which knows no such task
    # (the emulator's 90104 for an unknown task), and the third is refused locally for lacking Sdkappid
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["results"]
    assert [r["ErrorCode"] for r in results] == [0, 90104, 90104]
    assert "task" in results[1]["ErrorInfo"].lower() and results[2]["ErrorInfo"].startswith("Sdkappid: required")
    assert KEY not in run.stdout + run.stderr and other_key not in run.stdout + run.stderr
