"""Injected faults: what the next matching requests get instead of (or before) a normal answer.

A fault fires for its next ``count`` matching requests, or for each matching request with
``probability`` (rolled on a seeded RNG, so a seed makes the sequence repeatable). Given both, it
fires with ``probability`` until it has fired ``count`` times; given neither, it fires once.
Faults are tried in the order they were added; the first that fires wins.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, cast, get_args

from timpush.emulator.envelope import APIS

FaultKind = Literal["internal_error", "rate_limit", "error", "http_502", "slow", "drop", "not_envelope"]
KINDS: tuple[str, ...] = get_args(FaultKind)
_OPTIONS: dict[str, type] = {"count": int, "probability": float, "api": str, "code": int, "delay": float}


@dataclass(frozen=True)
class Fault:
    """One fault. ``api`` accepts the full name (``modify_sched_task``) or the short one (``modify``)."""

    kind: FaultKind
    count: int | None = None
    probability: float | None = None
    api: str | None = None
    code: int | None = None
    delay: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(KINDS)}")
        if self.api is not None:
            object.__setattr__(self, "api", _full_api(self.api))
        _check_numbers(self)
        if (self.kind == "error") != (self.code is not None):
            raise ValueError("fault code is required for kind error, and only for it")

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """``KIND[:count=N][:probability=P][:api=A][:code=C][:delay=S]``, as on the command line."""
        kind, *options = spec.strip().split(":")
        pairs = [option.partition("=") for option in options]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError(f"fault option must be name=value in {spec!r}")
        return cls.from_dict({"kind": kind, **{name: value for name, _, value in pairs}})

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Fault:
        """From JSON (admin path) or parsed text; numbers may be given as strings."""
        unknown = set(data) - {"kind", *_OPTIONS}
        if unknown:
            raise ValueError(f"unknown fault option(s): {', '.join(sorted(unknown))}")
        kind = data.get("kind")
        if not isinstance(kind, str):
            raise ValueError("fault kind is required")
        options = {name: _coerce(name, data[name]) for name in _OPTIONS if name in data}
        return cls(kind=cast(FaultKind, kind), **options)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        return {name: value for name, value in vars(self).items() if value is not None}


def _full_api(api: str) -> str:
    full = api if api.endswith("_sched_task") else f"{api}_sched_task"
    if full not in APIS:
        raise ValueError(f"fault api must be one of {', '.join(APIS)}")
    return full


def _check_numbers(fault: Fault) -> None:
    if fault.count is not None and fault.count < 1:
        raise ValueError("fault count must be >= 1")
    if fault.probability is not None and not 0 <= fault.probability <= 1:
        raise ValueError("fault probability must be within 0..1")
    if not fault.delay >= 0:
        raise ValueError("fault delay must be >= 0 seconds")


def _coerce(name: str, value: object) -> object:
    wanted = _OPTIONS[name]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"fault {name} must be a {wanted.__name__}")
    if wanted is str:
        return str(value)
    try:
        return wanted(value)
    except ValueError as exc:
        raise ValueError(f"fault {name} must be a {wanted.__name__}") from exc


class _Armed:
    """A fault and how many more times it may fire (None: unlimited, for probability faults)."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.left = fault.count if fault.count is not None or fault.probability is not None else 1


class FaultQueue:
    """The faults waiting to fire, in order. Not locked: the core's lock guards it."""

    def __init__(self, seed: int | None) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - fault dice for tests, not cryptography
        self._armed: list[_Armed] = []

    def add(self, faults: Iterable[Fault]) -> None:
        self._armed.extend(_Armed(fault) for fault in faults)

    def take(self, api: str) -> Fault | None:
        """The fault this request of ``api`` gets, if any; a fault whose count runs out is removed."""
        for armed in self._armed:
            if self._fires(armed.fault, api):
                if armed.left is not None:
                    armed.left -= 1
                    if armed.left == 0:
                        self._armed.remove(armed)
                return armed.fault
        return None

    def _fires(self, fault: Fault, api: str) -> bool:
        if fault.api is not None and fault.api != api:
            return False
        return fault.probability is None or self._rng.random() < fault.probability

    def pending(self) -> list[dict[str, object]]:
        return [{**armed.fault.to_dict(), "left": armed.left} for armed in self._armed]

    def clear(self) -> int:
        cleared = len(self._armed)
        self._armed.clear()
        return cleared
