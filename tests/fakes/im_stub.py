"""A minimal stand-in for ``modify_sched_task`` on loopback: OK, or a chosen ErrorCode per TaskID.

For tests that need the handler's real path to succeed or fail remotely without the emulator.
``answers`` maps a TaskID to the ErrorCode to return; ``seen`` lists the TaskIDs asked for, ``bodies`` the requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ImStub:
    endpoint: str = ""
    answers: dict[int, int] = field(default_factory=dict)
    seen: list[Any] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)


def _handler_for(stub: ImStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            task_id = body.get("TaskID")
            stub.seen.append(task_id)
            stub.bodies.append(body)
            code = stub.answers.get(task_id, 0)
            answer = json.dumps({"ActionStatus": "OK" if code == 0 else "FAIL", "ErrorCode": code,
                                 "ErrorInfo": "" if code == 0 else f"stub error {code}"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


@contextmanager
def im_stub() -> Iterator[ImStub]:
    stub = ImStub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(stub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
