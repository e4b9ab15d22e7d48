"""Mutating the sample events in ``events/`` and ``events/scf/`` where a producer or a caller has a say.

Each sample's shape names its **spots**: where in the event a producer or a caller controls the value
(DESIGN "No event crashes a trigger"): message bodies and attributes, the HTTP method, path, headers, query
and body, a Timer's ``Message``, an EventBridge event's ``data``, ``time`` and ``id``, CKafka and TDMQ
messages. What only the platform sets (``Records`` itself, an SQS record's own keys) stays as it is, with
two exceptions the contract also covers: the platform's times (an unusable one is ignored) and its ids
(one that is not valid text is escaped). A mutation draws one to three spots and a value for each.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from handler.model import loads
from timpush.demo import EVENTS

Path_ = tuple[str | int, ...]  # into an event; "*" stands for every index of a list
Spot = tuple[Path_, str]  # a path and the kind of value drawn for it


def samples(folder: Path) -> dict[str, Any]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


AWS_SAMPLES = samples(EVENTS)
SCF_SAMPLES = samples(EVENTS / "scf")

_SQS: list[Spot] = [(("Records", "*", "body"), "text"), (("Records", "*", "messageAttributes"), "attributes"),
                    (("Records", "*", "messageId"), "id"), (("Records", "*", "attributes", "SentTimestamp"), "time")]
_HTTP_V2: list[Spot] = [(("body",), "body"), (("rawPath",), "path"), (("headers",), "headers"),
                        (("rawQueryString",), "any_text"), (("queryStringParameters",), "query"),
                        (("requestContext", "http", "method"), "method"), (("requestContext", "requestId"), "id"),
                        (("requestContext", "timeEpoch"), "time"), (("cookies",), "any")]
_HTTP_V1: list[Spot] = [(("body",), "body"), (("path",), "path"), (("headers",), "headers"),
                        (("multiValueHeaders",), "any"), (("queryStringParameters",), "query"),
                        (("httpMethod",), "method"), (("requestContext", "requestId"), "id"),
                        (("requestContext", "requestTimeEpoch"), "time"), (("pathParameters",), "any")]
_SCF_HTTP: list[Spot] = [(("body",), "body"), (("path",), "path"), (("headers",), "headers"),
                         (("httpMethod",), "method"), (("queryString",), "query")]
_EVENTBRIDGE: list[Spot] = [(("data",), "data"), (("data", "msgBody"), "text"), (("time",), "time"),
                            (("id",), "id")]
SPOTS: dict[str, list[Spot]] = {
    "sqs": _SQS, "http-v2": _HTTP_V2, "http-v1": _HTTP_V1, "direct": [((), "payload")],
    "scheduled": [(("time",), "time"), (("id",), "id"), (("detail",), "any")],
    "scf-http": _SCF_HTTP,
    "scf-apigw": [*_SCF_HTTP, (("pathParameters", "taskId"), "any_text"), (("queryStringParameters",), "query"),
                  (("requestContext", "requestId"), "id")],
    "ckafka": [(("Records", "*", "Ckafka", "msgBody"), "text"), (("Records", "*", "Ckafka", "msgKey"), "any")],
    "cmq": [(("Records", "*", "CMQ", "msgBody"), "text"), (("Records", "*", "CMQ", "msgTag"), "any"),
            (("Records", "*", "CMQ", "publishTime"), "time"), (("Records", "*", "CMQ", "msgId"), "id")],
    "tdmq": _EVENTBRIDGE,
    "eventlist": [(("EventList", "*", *path), kind) for path, kind in _EVENTBRIDGE],
    "timer": [(("Message",), "text"), (("Time",), "time")],
}


def shape(platform: str, name: str) -> str:
    """The shape of a sample by its name (the samples are named for their trigger)."""
    base = name.removesuffix("-failing")
    if platform == "aws":
        for prefix, kind in (("sqs", "sqs"), ("http-api", "http-v2"), ("function-url", "http-v2"),
                             ("rest-api", "http-v1"), ("eventbridge", "scheduled")):
            if base.startswith(prefix):
                return kind
        return "direct"
    return {"apigw": "scf-apigw", "function-url": "scf-http", "cmq-topic": "cmq", "eventbridge-batch": "eventlist",
            }.get(base, base)


# --- values -------------------------------------------------------------------------------------


def json_values(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
               | st.text() | texts())
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=max_leaves)


def texts(max_size: int = 25) -> st.SearchStrategy[str]:
    """Any text, lone surrogates included: valid JSON escapes (``"\\udcff"``) that ``st.text()`` leaves out."""
    return st.text(st.characters(codec=None, exclude_categories=()), max_size=max_size)


# Values a producer may well send in a field: other tasks and types, times, near misses of each
NEAR_MISSES: list[Any] = [1234567890, "1234567891", 1234567893, 0, -1, 2**64, 1.5, True, "All", "Tag", "User", "Al",
                          "2031-06-20 09:00:00", "2020-01-01 00:00:00", "2031-06-20T09:00:00+08:00",
                          "2031-02-30 10:00:00", "2031-06-20T09:00:00.5Z", 1400000001, 1400000002, [], {},
                          {"OfflinePushInfo": {"Title": "t"}}, {"To_Account": []}, {"Condition": {"TagsOr": []}},
                          {"modifications": []}, "\ud800", "\x00"]


def deep(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def deep_texts() -> st.SearchStrategy[str]:
    """JSON nested far deeper than any modification: bare, as an object's value, inside a modification."""
    depth = st.integers(90, 3000)
    return st.one_of(
        depth.map(deep),
        depth.map(lambda n: '{"a":' * n + "1" + "}" * n),
        depth.map(lambda n: '{"TaskID": 1234567890, "Type": "All", "Content": {"Extra": ' + deep(n) + "}}"),
        depth.map(lambda n: json.dumps({"Type": "Notification", "Message": deep(n)})),
    )


@st.composite
def edited(draw: st.DrawFn, original: str) -> str:
    """The original text with a few characters inserted, deleted or replaced."""
    text = original
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 3))
        text = text[:at] + draw(texts(3)) + text[at + cut:]
    return text


@st.composite
def replaced_inside(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one of its parts (or itself) replaced by anything."""
    value = copy.deepcopy(value)
    holder: Any
    key: Any
    holder, key = None, None
    node = value
    while isinstance(node, dict | list) and node and draw(st.booleans()):
        holder = node
        key = draw(st.sampled_from(sorted(node, key=str) if isinstance(node, dict) else range(len(node))))
        node = node[key]
    new = draw(st.one_of(json_values(3), st.sampled_from(NEAR_MISSES).map(copy.deepcopy), deep_texts()))
    if holder is None:
        return new
    holder[key] = new
    return value


def json_text(original: Any) -> st.SearchStrategy[str]:
    """A producer's JSON text: edited, a part replaced, another payload, deep, or any text at all."""
    text = original if isinstance(original, str) else json.dumps(original)
    try:
        parsed = loads(text)
    except ValueError:  # not JSON, or too deep (TooDeep): it stays text, its depth is the point
        parsed = text
    inside = replaced_inside(parsed).flatmap(lambda v: st.sampled_from([json.dumps(v), json.dumps(
        v, ensure_ascii=False).encode("utf-8", "surrogatepass").decode("utf-8", "replace")]))
    return st.one_of(inside, inside, edited(text), deep_texts(), texts(40), st.just(""))


def platform_times(original: Any) -> st.SearchStrategy[Any]:
    """Epoch milliseconds and ISO times, usable or not (too far, too early, not a number at all)."""
    ms = st.integers(-(10**20), 10**20)
    odd = st.sampled_from(["99999999999999999", "253402300800000", "946684799999", "0", "-1", "1e3", "²", "",
                           "NaN", "9" * 400, "2026-13-40T00:00:00Z", "0001-01-01T00:00:00+01:00",
                           "9999-12-31T23:59:59-01:00", 1.5, True, None, 10**400, float("inf")])
    return st.one_of(st.just(original), odd, ms, ms.map(str), st.floats(), texts(20), json_values(2))


def ids() -> st.SearchStrategy[str]:
    """An id that may not be valid text: lone surrogates (valid JSON escapes) and anything else."""
    surrogate = st.integers(0xD800, 0xDFFF).map(chr)
    return st.one_of(texts(30), st.builds(lambda a, s, b: a + s + b, texts(8), surrogate, texts(8)))


def header_maps() -> st.SearchStrategy[dict[str, str]]:
    keys = st.sampled_from(["content-type", "Content-Type", "content-length", "x-forwarded-for", "host"]) | texts(10)
    return st.dictionaries(keys, texts(40) | deep_texts(), max_size=5)


def query_maps() -> st.SearchStrategy[Any]:
    return st.dictionaries(texts(8), texts(20) | st.lists(texts(8), max_size=2) | st.just(True), max_size=4)


def attribute_maps() -> st.SearchStrategy[dict[str, Any]]:
    """SQS message attributes as a producer may set them: names we read (IssuedAt, IssuedBy, ...) and others."""
    names = st.sampled_from(["IssuedAt", "IssuedBy", "IssuedSeq", "IssuedPos", "Redrives", "ErrorCode"]) | texts(10)
    text = st.one_of(texts(30), platform_times(None).map(str), ids())
    value: st.SearchStrategy[Any] = st.fixed_dictionaries(
        {"stringValue": text, "dataType": st.sampled_from(["String", "Number", "Binary", "String.x"])},
        optional={"stringListValues": st.just([]), "binaryListValues": st.just([])})
    return st.dictionaries(names, value | json_values(2), max_size=4)


def methods() -> st.SearchStrategy[str]:
    return st.sampled_from(["PATCH", "patch", "GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD"]) | texts(8)


def paths(original: Any) -> st.SearchStrategy[str]:
    segment = st.sampled_from(["1234567890", "1234567891", "0", "9" * 30, "²", "%31", ""]) | texts(12)
    return st.one_of(st.just(str(original)), segment.map(lambda s: "/sched-tasks/" + s),
                     segment.map(lambda s: "/sched-tasks/" + s + "/x"), texts(30).map(lambda s: "/" + s))


def values(kind: str, original: Any) -> st.SearchStrategy[Any]:
    strategies: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
        "text": lambda: json_text(original),
        "body": lambda: json_text(original) | st.none(),
        "payload": lambda: replaced_inside(original),
        "time": lambda: platform_times(original),
        "id": ids,
        "method": methods,
        "path": lambda: paths(original),
        "headers": header_maps,
        "query": query_maps,
        "attributes": attribute_maps,
        "any_text": lambda: texts(40) | deep_texts(),
        "any": lambda: json_values(3),
        "data": lambda: json_values(3) | replaced_inside(original),
    }
    return strategies[kind]()


# --- mutation -----------------------------------------------------------------------------------


def _places(event: Any, path: Path_) -> list[tuple[Any, str | int]]:
    """Every (container, key) the path names in the event (``*``: each index of a list)."""
    holders: list[Any] = [event]
    for step in path[:-1]:
        found: list[Any] = []
        for holder in holders:
            if step == "*" and isinstance(holder, list):
                found.extend(holder)
            elif isinstance(holder, dict) and isinstance(holder.get(step), dict | list):
                found.append(holder[step])
        holders = found
    last = path[-1]
    places: list[tuple[Any, str | int]] = []
    for holder in holders:
        if last == "*" and isinstance(holder, list):
            places.extend((holder, i) for i in range(len(holder)))
        elif isinstance(holder, dict):
            places.append((holder, last))
    return places


@st.composite
def mutated_events(draw: st.DrawFn, platform: str) -> tuple[str, str, Any]:
    """(shape, sample name, event): a sample with one to three of its spots given a drawn value."""
    table = AWS_SAMPLES if platform == "aws" else SCF_SAMPLES
    name = draw(st.sampled_from(sorted(table)))
    kind = shape(platform, name)
    event = copy.deepcopy(table[name])
    for _ in range(draw(st.integers(1, 3))):
        path, value_kind = draw(st.sampled_from(SPOTS[kind]))
        if not path:
            event = draw(values(value_kind, event))
            continue
        places = _places(event, path)
        if places:
            holder, key = draw(st.sampled_from(places))
            holder[key] = draw(values(value_kind, holder.get(key) if isinstance(holder, dict) else holder[key]))
    if kind == "sqs":
        _platform_sqs(event)
    return kind, name, event


def _platform_sqs(event: dict[str, Any]) -> None:
    """What SQS itself guarantees stays so: a body and an id that are strings, ids unique in the batch."""
    for index, record in enumerate(event["Records"]):
        if not isinstance(record["body"], str):
            record["body"] = json.dumps(record["body"])
        record["messageId"] = f"{record['messageId']}#{index}"
