"""The emulator's own control paths under ``/_emulator/``: JSON in and out, no auth (loopback only).

| method | path | body | answer |
|---|---|---|---|
| GET | /_emulator/requests | | ``{"requests": [entry, ...]}`` |
| DELETE | /_emulator/requests | | ``{"cleared": n}`` |
| GET | /_emulator/faults | | ``{"faults": [fault + "left", ...]}`` |
| POST | /_emulator/faults | a fault, a list of them, or ``{"faults": [...]}`` | ``{"faults": [...]}`` |
| DELETE | /_emulator/faults | | ``{"cleared": n}`` |
| GET | /_emulator/clock | | ``{"now": unix, "utc": "...", "offset": s}`` |
| POST | /_emulator/clock | ``{"advance": seconds}`` | the same as GET |
| POST | /_emulator/reset | | ``{"reset": true}`` |
| GET | /_emulator/tasks | | ``{"tasks": [TaskInfo, ...]}`` |

A bad body answers HTTP 400 ``{"error": "..."}``; an unknown path 404; a known path with another method 405.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from timpush.emulator.core import EmulatorCore, Reply, json_reply
from timpush.emulator.faults import Fault

PREFIX = "/_emulator/"
_Route = Callable[[EmulatorCore, object], object]


def handle(core: EmulatorCore, method: str, path: str, raw: bytes) -> Reply:
    routes = _ROUTES.get(path.rstrip("/"))
    if routes is None:
        return json_reply({"error": f"no admin path {path}"}, 404)
    route = routes.get(method)
    if route is None:
        return json_reply({"error": f"{path} allows {', '.join(sorted(routes))}"}, 405)
    try:
        return json_reply(route(core, _payload(raw)))
    except ValueError as exc:
        return json_reply({"error": str(exc)}, 400)


def _payload(raw: bytes) -> object:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValueError("body is not valid JSON") from exc


def _add_faults(core: EmulatorCore, payload: object) -> object:
    items = payload.get("faults") if isinstance(payload, dict) and "kind" not in payload else payload
    items = [items] if isinstance(items, dict) else items
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError('body must be a fault object, a list of them, or {"faults": [...]}')
    return {"faults": core.add_faults([Fault.from_dict(item) for item in items])}


def _advance(core: EmulatorCore, payload: object) -> object:
    seconds = payload.get("advance") if isinstance(payload, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError('body must be {"advance": seconds}')
    return core.advance(seconds).as_dict()


def _reset(core: EmulatorCore, _payload: object) -> object:
    core.reset()
    return {"reset": True}


_ROUTES: dict[str, dict[str, _Route]] = {
    "/_emulator/requests": {
        "GET": lambda core, _: {"requests": core.requests()},
        "DELETE": lambda core, _: {"cleared": core.clear_requests()},
    },
    "/_emulator/faults": {
        "GET": lambda core, _: {"faults": core.faults()},
        "POST": _add_faults,
        "DELETE": lambda core, _: {"cleared": core.clear_faults()},
    },
    "/_emulator/clock": {"GET": lambda core, _: core.clock().as_dict(), "POST": _advance},
    "/_emulator/reset": {"POST": _reset},
    "/_emulator/tasks": {"GET": lambda core, _: {"tasks": core.tasks()}},
}
