"""``timpush demo``: the whole flow on one machine, narrated.

Starts the emulator on a free loopback port, creates tasks through ``add_sched_task``, sends every
sample in ``events/`` through the real ``lambda_handler`` (some with faults injected on the
emulator first) and every one in ``events/scf/`` through SCF's ``main_handler``, then reads the tasks
back and shows what was retried and what was dead-lettered. It ends with one task's history (``story``):
applied, superseded by a newer change, dead-lettered, applied again by redrive.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import secrets
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from handler.im import client
from handler.im.usersig import generate
from timpush.context import LocalContext, scf_context
from timpush.demo import apps as demo_apps
from timpush.demo import story
from timpush.emulator import Emulator, EmulatorSettings, Fault
from timpush.emulator.settings import SAMPLE_FIRST_TASK_ID

APP = 1400000001
ADMIN = "administrator"
EVENTS = Path(__file__).resolve().parents[2] / "events"
FIRST_TASK_ID = SAMPLE_FIRST_TASK_ID  # the samples in events/ name these tasks
TASKS: list[tuple[str, dict[str, Any]]] = [
    ("All", {"OfflinePushInfo": {"Title": "Spring sale", "Desc": "Everything 20% off"}}),
    ("Tag", {"Condition": {"TagsOr": ["vip"]}, "OfflinePushInfo": {"Title": "VIP early access", "Desc": "Soon"}}),
    ("User", {"To_Account": ["alice", "bob"], "OfflinePushInfo": {"Title": "Your order", "Desc": "Shipped"}}),
    ("All", {"OfflinePushInfo": {"Title": "Flash sale", "Desc": "Sent already"}}),  # dispatched before the demo
    ("All", {"OfflinePushInfo": {"Title": "Weekly digest", "Desc": "Meets a flaky server"}}),
]
# Faults armed on the emulator just before a sample runs, to show retries and dead letters.
FAULTS = {
    "sqs-standard-failing": [Fault(kind="internal_error", count=8, api="modify")],
    "sqs-fifo-failing": [Fault(kind="internal_error", count=4, api="modify")],
    "direct": [Fault(kind="drop", count=1, api="modify"), Fault(kind="http_502", count=1, api="modify")],
}


def run(args: argparse.Namespace) -> int:
    key = secrets.token_hex(16)  # a throwaway app key: the demo's emulator and handler share it
    dead = Path(args.dead_letters).resolve()
    dead.unlink(missing_ok=True)
    settings = EmulatorSettings(sdkappid=APP, key=key, admins=(ADMIN,), seed=0, first_task_id=FIRST_TASK_ID)
    _quiet(args.verbose)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with Emulator(settings) as emu:
        _tour(emu, key, dead)
    return 0


def _tour(emu: Emulator, key: str, dead: Path) -> None:
    """The demo's stops, in order, on the running emulator."""
    _configure(emu.url, key, dead)
    _say(f"IM emulator listening on {emu.url} (SDKAppID {APP}, admin {ADMIN})")
    create_tasks(emu, _say)
    _trace_one(emu)
    _late_one(emu)
    _print_events([_run_event(emu, path) for path in _samples(EVENTS)])
    _print_events(_scf_leg(emu), "\nSamples from events/scf/ through handler.main_handler (Tencent SCF):")
    _print_tasks(emu, key)
    _print_retries(emu)
    _print_dead_letters(dead)
    told = story.begin(emu, _say, _late_events)
    _redrive(emu, dead)
    demo_apps.show(emu, dead, _say)
    story.end(told, _say)


def _redrive(emu: Emulator, dead: Path) -> None:
    """Bring back the retryable dead letters now that the server behaves: the way back, shown."""
    from timpush import redrive  # the command itself, as `timpush redrive` runs it (not through the CLI: no circle)

    emu.clear_faults()
    _say(f"\nThe server is healthy again; bringing back the retryable ones:\n"
         f"  timpush redrive --from file:{dead} --to direct --class retryable --without-store")
    parser = argparse.ArgumentParser(prog="timpush redrive")
    redrive.add_arguments(parser)
    # The demo keeps no store: its own process is the whole fleet, and says so (DESIGN "Order").
    redrive.run(parser.parse_args(["--from", f"file:{dead}", "--to", "direct", "--class", "retryable",
                                   "--without-store"]))
    left = _lines(dead)
    _say(f"{len(left)} dead letter(s) left in {dead}: the permanent failures, for a person to look at.")


def _quiet(verbose: bool) -> None:
    """The handler's JSON log lines would drown the narration; --verbose shows them on stderr."""
    from handler.observability import logger

    logger.setLevel("INFO" if verbose else "CRITICAL")


def _configure(url: str, key: str, dead: Path) -> None:
    os.environ.update({"IM_ENDPOINT": url, "IM_SDKAPPID": str(APP), "IM_SECRET_KEY": key, "IM_ADMIN": ADMIN,
                       "DEAD_LETTER": f"file:{dead}", "IM_RATE_LIMIT": "5", "POWERTOOLS_LOG_LEVEL": "WARNING",
                       "POWERTOOLS_METRICS_NAMESPACE": "TimpushDemo"})
    for name in ("IM_SECRET_SOURCE", "DEAD_LETTER_ROUTES", "WORK_QUEUE", "IM_REGION", "IM_STATE_STORE",
                 "IM_STATE_STORE_PASSWORD"):  # the demo is a fleet of one: never the operator's real store
        os.environ.pop(name, None)
    from handler import runtime

    runtime.reset()


def _creds(key: str) -> client.Credentials:
    return client.Credentials(APP, ADMIN, generate(APP, key, ADMIN, 3600))


def create_tasks(emu: Emulator, say: Callable[[str], None] = print) -> None:
    """The tasks the samples in events/ name, the fourth already dispatched (the emulator needs
    ``first_task_id=FIRST_TASK_ID``). Signed with the emulator's own app, key and first admin."""
    app, admin = emu.settings.sdkappid, emu.settings.admins[0]
    creds = client.Credentials(app, admin, generate(app, emu.settings.key, admin, 3600))
    soon = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 2))
    for index, (task_type, content) in enumerate(TASKS):
        sched_at = soon if index == 3 else "2031-06-15 14:00:00"
        body = {"Sdkappid": app, "Type": task_type, "SchedAt": sched_at, "Content": {"From_Account": admin, **content}}
        result = client.call(emu.url, "add_sched_task", body, creds)
        say(f"created task {result.body and result.body.get('TaskID')} ({task_type}, SchedAt {sched_at})")
    emu.advance(120)  # the emulator's clock moves on: the "soon" task has been dispatched
    say(f"advanced the emulator clock 2 minutes: task {FIRST_TASK_ID + 3} is now dispatched\n")


def _trace_one(emu: Emulator) -> None:
    """One queue message with the handler's debug lines, told as steps (the server fails it once)."""
    from handler import lambda_handler

    event = json.loads((EVENTS / "sqs-standard.json").read_text(encoding="utf-8"))
    event["Records"] = event["Records"][:1]
    emu.add_faults([Fault(kind="internal_error", count=1, api="modify")])
    try:
        with _debug_lines() as lines, contextlib.redirect_stdout(io.StringIO()):
            result = lambda_handler(event, LocalContext(timeout_seconds=30))
    finally:
        emu.clear_faults()
    _say("One queue message, step by step (events/sqs-standard.json, its first record; the server fails once):")
    _tell_steps(lines.getvalue().splitlines(), result)


@contextlib.contextmanager
def _debug_lines() -> Iterator[io.StringIO]:
    """The handler's log lines, DEBUG and up, into a buffer for the block; its level and stream restored."""
    from handler.observability import logger

    lines, level = io.StringIO(), logger.log_level
    output = cast(logging.StreamHandler, logger.registered_handler)  # type: ignore[type-arg]
    stream = output.setStream(lines)
    logger.setLevel("DEBUG")
    try:
        yield lines
    finally:
        output.setStream(stream)
        logger.setLevel(level)


def _tell_steps(lines: list[str], result: Any) -> None:
    for step in (_step(json.loads(line)) for line in lines if line.startswith("{")):
        if step:
            _say(f"  {step}")
    _say(f"  answer to SQS: {json.dumps(result)}\n")


def _late_one(emu: Emulator) -> None:
    """An operator's change over HTTP, then an older queue message that arrives late: superseded, not sent."""
    task = FIRST_TASK_ID + len(TASKS) - 1
    answer, sent, result = _patch_then_late(emu, *_late_events(task))
    kept = next(t["SchedAt"] for t in emu.tasks() if t["TaskID"] == task)
    _say(f"A late modification (task {task}):")
    _say(f"  an operator's PATCH now          HTTP {answer['statusCode']}: SchedAt 2031-09-09 09:00:00")
    _say(f"  a queue message sent 5 min ago   SchedAt 2031-01-01 08:00:00, delivered only now: {sent} request(s) "
         f"sent, answer to SQS {json.dumps(result)}")
    _say(f"  the task keeps SchedAt {kept}: the late one was superseded (log line 'modification superseded by a "
         "newer change', metric ModificationsSuperseded, code -7)")
    _tie(emu, task)


def _late_events(task: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """An operator's PATCH of the task now, and a queue message for it sent 5 minutes ago."""
    http = as_of_now(json.loads((EVENTS / "http-api-v2.json").read_text(encoding="utf-8")))
    http["rawPath"] = http["requestContext"]["http"]["path"] = f"/sched-tasks/{task}"
    http["pathParameters"] = {"taskId": str(task)}
    http["body"] = json.dumps({"Type": "All", "SchedAt": "2031-09-09 09:00:00"})
    late = as_of_now(json.loads((EVENTS / "sqs-standard.json").read_text(encoding="utf-8")), ago=300)
    late["Records"] = late["Records"][:1]
    late["Records"][0]["body"] = json.dumps({"TaskID": task, "Type": "All", "SchedAt": "2031-01-01 08:00:00"})
    return http, late


def _patch_then_late(emu: Emulator, http: dict[str, Any], late: dict[str, Any]) -> tuple[Any, int, Any]:
    """The PATCH's answer, how many requests the late message then sent, and the answer to SQS."""
    from handler import lambda_handler

    with contextlib.redirect_stdout(io.StringIO()):
        answer = lambda_handler(http, LocalContext(timeout_seconds=30))
        sent_before = len(emu.requests())
        result = lambda_handler(late, LocalContext(timeout_seconds=30))
    return answer, len(emu.requests()) - sent_before, result


def _tie(emu: Emulator, task: int) -> None:
    """Two FIFO messages of one SendMessageBatch: one SentTimestamp, so the queue's own order breaks the tie."""
    from handler import lambda_handler

    batch = as_of_now(json.loads((EVENTS / "sqs-fifo.json").read_text(encoding="utf-8")))
    batch["Records"] = batch["Records"][:2]
    times = ("2031-10-10 10:00:00", "2031-11-11 11:00:00")
    for record, sched_at in zip(batch["Records"], times, strict=True):
        record["body"] = json.dumps({"TaskID": task, "Type": "All", "SchedAt": sched_at})
        record["attributes"]["MessageGroupId"] = str(task)
    sent_before = len(emu.requests())
    with contextlib.redirect_stdout(io.StringIO()):
        lambda_handler(batch, LocalContext(timeout_seconds=30))
    kept = next(t["SchedAt"] for t in emu.tasks() if t["TaskID"] == task)
    numbers = " then ".join(r["attributes"]["SequenceNumber"] for r in batch["Records"])
    _say(f"  then two FIFO messages of one batch, one SentTimestamp, SequenceNumber {numbers}: "
         f"{len(emu.requests()) - sent_before} request(s) sent")
    _say(f"  the task keeps SchedAt {kept}: the queue's own order breaks the tie, the second is newer\n")


def as_of_now(event: dict[str, Any], ago: float = 0.0) -> dict[str, Any]:
    """A sample event as if made ``ago`` seconds ago: its times are the issue times that order changes
    (DESIGN "Order"), and a sample's fixed date would make it older than anything the demo did before."""
    now_ms = str(int((time.time() - ago) * 1000))
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - ago))
    for record in event.get("Records") or []:
        if isinstance(record, dict) and "SentTimestamp" in record.get("attributes", {}):
            record["attributes"]["SentTimestamp"] = now_ms
        if isinstance(record, dict) and isinstance(record.get("CMQ"), dict) and "publishTime" in record["CMQ"]:
            record["CMQ"]["publishTime"] = iso  # SCF: a CMQ message's time
    context = event.get("requestContext")
    if isinstance(context, dict):
        for name in ("timeEpoch", "requestTimeEpoch"):
            if name in context:
                context[name] = int(now_ms)
    if event.get("Type") == "Timer" and "Time" in event:
        event["Time"] = iso  # SCF: the timer's firing time
    _eventbridge_now(event, now_ms)
    return event


def _eventbridge_now(event: dict[str, Any], now_ms: str) -> None:
    """SCF: TDMQ through EventBridge, one event or a batch, carries its time in each event's ``time``."""
    for each in [event, *(event.get("EventList") or [])]:
        if isinstance(each, dict) and each.get("type") == "connector:tdmq" and "time" in each:
            each["time"] = now_ms


def _step(line: dict[str, Any]) -> str | None:
    message = line.get("message")
    if message == "validated":
        return (f"validated locally   TaskID {line['task_id']}, Type {line['task_type']}, "
                f"SchedAt {line['sched_at']} (UTC)")
    if message == "sending":
        until = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(line["usersig_expires_at"]))
        return (f"paced and signed    waited {line['paced_ms']} ms for a send slot; admin UserSig valid until "
                f"{until}, reused\n  sent                modify_sched_task, attempt {line['attempt']}")
    if message == "answered":
        return f"answered            ErrorCode {line['error_code']} {line['error_info']!r} in {line['latency_ms']} ms"
    if str(message).startswith("modification "):
        return f"finished            {line['outcome']} after {line['attempts']} attempt(s): one log line, one metric"
    return None


def _run_event(emu: Emulator, path: Path, entry: Callable[[Any, Any], Any] | None = None,
               context: Any = None) -> tuple[str, str]:
    from handler import lambda_handler

    emu.clear_faults()
    emu.add_faults(FAULTS.get(path.stem, []))
    event = as_of_now(json.loads(path.read_text(encoding="utf-8")))
    logs = io.StringIO()
    with contextlib.redirect_stdout(logs):  # EMF metric lines
        try:
            result = (entry or lambda_handler)(event, context or LocalContext(timeout_seconds=30))
        except Exception as exc:  # noqa: BLE001 - the demo reports a failing invocation and goes on
            return path.stem, f"invocation failed: {type(exc).__name__}: {exc}"
    return path.stem, _describe(result)


def _scf_leg(emu: Emulator) -> list[tuple[str, str]]:
    """The same function as SCF runs it: main_handler, an SCF context dict, counts in the log lines."""
    from handler import main_handler

    before = os.environ.get("TENCENTCLOUD_RUNENV")
    os.environ["TENCENTCLOUD_RUNENV"] = "SCF"
    try:
        return [_run_event(emu, path, main_handler, scf_context(30)) for path in _samples(EVENTS / "scf")]
    finally:
        os.environ.pop("TENCENTCLOUD_RUNENV")
        if before is not None:
            os.environ["TENCENTCLOUD_RUNENV"] = before


def _samples(folder: Path) -> list[Path]:
    """The samples of a folder, each trigger's ahead of its failing variant."""
    return sorted(folder.glob("*.json"), key=lambda p: (p.stem.removesuffix("-failing"), p.stem))


def _describe(result: Any) -> str:
    if isinstance(result, dict) and "batchItemFailures" in result:
        ids = [f["itemIdentifier"][:13] + "…" for f in result["batchItemFailures"]]
        return f"SQS: {len(ids)} message(s) left for redelivery {ids}" if ids else "SQS: every message finished"
    if isinstance(result, dict) and "statusCode" in result:
        body = json.loads(result.get("body") or "{}")
        return f"HTTP {result['statusCode']}: ErrorCode {body.get('ErrorCode')} {body.get('ErrorInfo', '')}".strip()
    if isinstance(result, dict) and "succeeded" in result:
        codes = [r["ErrorCode"] for r in result.get("results", []) if r["ErrorCode"]]
        superseded = f"{result['superseded']} superseded, " if result.get("superseded") else ""
        return (f"{result['succeeded']} succeeded, {superseded}{result['dead_lettered']} dead-lettered "
                f"{codes or ''}").strip()
    return json.dumps(result)[:100]


def _print_events(rows: list[tuple[str, str]], title: str = "Samples from events/ through handler.lambda_handler:",
                  ) -> None:
    _say(title)
    width = max(len(name) for name, _ in rows)
    for name, text in rows:
        _say(f"  {name:<{width}}  {text}")


def _print_tasks(emu: Emulator, key: str) -> None:
    _say("\nTasks read back with get_sched_task:")
    for task_id in range(FIRST_TASK_ID, FIRST_TASK_ID + len(TASKS)):
        result = client.call(emu.url, "get_sched_task", {"Sdkappid": APP, "TaskID": task_id}, _creds(key))
        info = (result.body or {}).get("TaskInfo", {})
        _say(f"  {task_id}  {info.get('Type', '?'):<4}  {info.get('Status', '?'):<10}  SchedAt {info.get('SchedAt')}"
             f"  Title {info.get('Title')!r}")


def _print_retries(emu: Emulator) -> None:
    failed = Counter(str(r.get("code")) for r in emu.requests()
                     if str(r.get("api", "")).endswith("modify_sched_task") and r.get("code") != 0)
    total = sum(1 for r in emu.requests() if str(r.get("api", "")).endswith("modify_sched_task"))
    summary = ", ".join(f"{count}× {'no answer' if code == 'None' else code}" for code, count in failed.items())
    _say(f"\nmodify_sched_task calls the emulator saw: {total}; answered with an error or not at all: {summary}")


def _print_dead_letters(path: Path) -> None:
    letters = [json.loads(line) for line in _lines(path)]
    _say(f"\nDead letters ({len(letters)}) in {path}:")
    for doc in letters:
        error = doc["error"]
        _say(f"  {error['code']:>6} {error['class']:<9} {error['origin']:<9} from {doc['source']['kind']:<6}"
             f" {error['info'][:70]}")
    if letters:
        _say("One of them in full (the record every sink receives):")
        _say(json.dumps(letters[-1], ensure_ascii=False, indent=2))


def _lines(path: Path) -> list[str]:
    """JSON Lines split on newlines only: str.splitlines would also split inside a record at U+2028."""
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line] if path.exists() else []


def _say(text: str) -> None:
    print(text, file=sys.stdout, flush=True)
