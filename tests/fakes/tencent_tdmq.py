"""A fake TDMQ for CMQ (API 3.0, ``tdmq`` version 2020-02-17) on loopback: ``SendCmqMsg`` into named queues.

The transport, TC3 signature checks and request recording are ``FakeTencentApi``'s. A queue must be
created first (the real service answers ``ResourceNotFound`` for an unknown one); messages above the
queue's maximum size are refused with ``InvalidParameterValue``, as a CMQ queue refuses them.

    with FakeTdmq(credentials={"AKIDtest": "key"}) as tdmq:
        tdmq.create_queue("timpush-dead-letters")
        ... TENCENTCLOUD_TDMQ_ENDPOINT=tdmq.host ...
        tdmq.messages("timpush-dead-letters")
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from tests.fakes.tencent_api import FakeTencentApi, ServiceError

DEFAULT_MAX_MSG_BYTES = 65536  # a CMQ queue's default maximum message size


class FakeTdmq(FakeTencentApi):
    SERVICE = "tdmq"
    API_VERSION = "2020-02-17"

    def __init__(self, credentials: dict[str, str] | None = None, require_token: str | None = None) -> None:
        super().__init__(credentials, require_token)
        self._queues: dict[str, list[str]] = {}
        self._max_bytes: dict[str, int] = {}

    def actions(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"SendCmqMsg": self._send}

    def create_queue(self, name: str, max_msg_bytes: int = DEFAULT_MAX_MSG_BYTES) -> None:
        with self._lock:
            self._queues.setdefault(name, [])
            self._max_bytes[name] = max_msg_bytes

    def messages(self, name: str) -> list[str]:
        with self._lock:
            return list(self._queues[name])

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        name, content = body.get("QueueName"), body.get("MsgContent")
        if not isinstance(name, str) or not name or not isinstance(content, str):
            raise ServiceError("MissingParameter", "QueueName and MsgContent are required.")
        with self._lock:
            if name not in self._queues:
                raise ServiceError("ResourceNotFound", f"The queue `{name}` does not exist.")
            if len(content.encode("utf-8")) > self._max_bytes[name]:
                raise ServiceError("InvalidParameterValue", "MsgContent is longer than the queue's maximum.")
            self._queues[name].append(content)
        return {"Result": True, "MsgId": str(uuid.uuid4())}
