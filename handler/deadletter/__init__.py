"""Dead letters: the record of DESIGN (``handler.deadletter.record``), routed by error code or class to a sink.

A code route beats a class route, which beats DEAD_LETTER. Writing is synchronous and raises
DeadLetterError on failure, so the caller can keep the message (queue) or fail loudly (direct).
One module per sink (``file``, ``sqs``, ``tdmq`` with its client ``cmq``); each depends on the record,
none on this door, which opens a sink only when its route is first used.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Protocol

from handler.config import ConfigError, Settings
from handler.deadletter.record import DeadLetterError, parse_tdmq_target
from handler.observability import logger


class Sink(Protocol):
    name: str

    def write(self, records: list[dict[str, Any]]) -> None: ...


def open_sink(spec: str) -> Sink:
    """A sink from its spec (``file:PATH``, ``sqs:URL`` or ``tdmq-cmq:REGION/QUEUE``)."""
    scheme, _, target = spec.partition(":")
    if scheme == "file":
        from handler.deadletter.file import FileSink

        return FileSink(target)
    if scheme == "sqs":
        from handler.deadletter.sqs import SqsSink  # boto3 only when an SQS sink is configured

        return SqsSink(target)
    if scheme == "tdmq-cmq":
        from handler.deadletter.tdmq import TdmqCmqSink  # its client (requests) only when that sink is configured

        return TdmqCmqSink(target)
    raise ValueError(f"unknown dead-letter sink {spec!r}")


class DeadLetters:
    """The routes of one configuration, with sinks opened on first use."""

    def __init__(self, default: str, routes: dict[str, str]) -> None:
        self._default = default
        self._routes = routes
        self._sinks: dict[str, Sink] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> DeadLetters:
        """The routes of the settings; a tdmq-cmq target of the wrong form fails here, at cold start."""
        for variable, spec in [("DEAD_LETTER", settings.dead_letter), *(
                (f"DEAD_LETTER_ROUTES[{key!r}]", sink) for key, sink in settings.dead_letter_routes.items())]:
            if spec.startswith("tdmq-cmq:"):
                try:
                    parse_tdmq_target(spec.partition(":")[2])
                except ValueError as exc:
                    raise ConfigError(f"{variable}: {exc}") from None
        return cls(settings.dead_letter, dict(settings.dead_letter_routes))

    def route(self, code: int, error_class: str) -> str:
        """The sink spec for a failure: code route, then class route, then the default."""
        return self._routes.get(str(code)) or self._routes.get(error_class) or self._default

    def class_route(self, error_class: str) -> str:
        """The sink a class goes to when no code route applies (the maintenance job's queue)."""
        return self._routes.get(error_class) or self._default

    def send(self, records: Iterable[dict[str, Any]]) -> list[str]:
        """Write each record to its route; return the sink spec of each, in order."""
        batches: dict[str, list[dict[str, Any]]] = {}
        specs = []
        for doc in records:
            spec = self.route(doc["error"]["code"], doc["error"]["class"])
            batches.setdefault(spec, []).append(doc)
            specs.append(spec)
        try:
            for spec, docs in batches.items():
                self._sink(spec).write(docs)
        except DeadLetterError:
            # The caller keeps the message or fails the invocation; the log keeps the records meanwhile.
            logger.exception("dead letters could not be written", extra={"records": [d for b in batches.values()
                                                                                      for d in b]})
            raise
        return specs

    def _sink(self, spec: str) -> Sink:
        with self._lock:
            if spec not in self._sinks:
                self._sinks[spec] = open_sink(spec)
            return self._sinks[spec]
