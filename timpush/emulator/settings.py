"""The emulator's settings: one frozen object, fixed for the emulator's lifetime.

Where API.md marks the server's behaviour as inferred or unknown, the choice is a setting here,
so a test can pin either reading instead of the emulator guessing for everyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ContentMode = Literal["merge", "replace"]
ListFilter = Literal["createat", "schedat", "orderby"]

DEFAULT_SDKAPPID = 1400000001
DEFAULT_ADMIN = "administrator"
SAMPLE_FIRST_TASK_ID = 1234567890  # the first task the samples in events/ name (the docs' example ID)
CONTENT_MODES: tuple[ContentMode, ...] = ("merge", "replace")
LIST_FILTERS: tuple[ListFilter, ...] = ("createat", "schedat", "orderby")


@dataclass(frozen=True, kw_only=True)
class EmulatorSettings:
    """How the emulated IM app behaves. ``key`` (and other apps' keys) never appear in ``repr``.

    - ``rate_limit``: accepted requests per second per (sdkappid, api); 0 turns the limit off.
    - ``dispatch_seconds``: how long a task stays ``dispatching`` after its SchedAt.
    - ``content_mode``: modify merges Content's top-level keys into the stored ones, or replaces it.
    - ``refuse_past``: a SchedAt not in the future is refused (modify: 90110; add: ``add_past_code``).
    - ``max_lead_days``: a SchedAt further ahead is refused with the same code; None = no limit.
    - ``list_max_days``: widest BeginTime..EndTime range of list; None = no limit.
    - ``list_filter_on``: the timestamp the list range filters on; ``orderby`` follows OrderBy.
    - ``push_tag_codes``: answer tag-rule failures with the push codes (90020, 90022, 90032,
      90039, 90040) instead of 90104.
    - ``other_apps``: more ``(sdkappid, key)`` pairs served besides the main one.
    - ``log_limit``: how many requests the request log keeps (oldest dropped first).
    - ``first_task_id``: the first TaskID add hands out (the demo's samples name fixed IDs);
      None = a seeded ten-digit base.
    """

    sdkappid: int = DEFAULT_SDKAPPID
    key: str = field(repr=False)
    admins: tuple[str, ...] = (DEFAULT_ADMIN,)
    seed: int | None = 0
    rate_limit: int = 5
    dispatch_seconds: float = 5.0
    content_mode: ContentMode = "merge"
    refuse_past: bool = True
    max_lead_days: float | None = None
    list_max_days: float | None = 31
    list_filter_on: ListFilter = "createat"
    add_past_code: int = 90104
    push_tag_codes: bool = False
    other_apps: tuple[tuple[int, str], ...] = field(default=(), repr=False)
    log_limit: int = 10_000
    first_task_id: int | None = None

    def __post_init__(self) -> None:
        _require(self.sdkappid > 0, "sdkappid must be a positive integer")
        _require(bool(self.key), "key must not be empty")
        _require(bool(self.admins) and all(self.admins), "admins must name at least one identifier")
        _require(self.rate_limit >= 0, "rate_limit must be >= 0 (0 turns it off)")
        _require(self.dispatch_seconds >= 0, "dispatch_seconds must be >= 0")
        _require(self.content_mode in CONTENT_MODES, "content_mode must be merge or replace")
        _require(self.list_filter_on in LIST_FILTERS, "list_filter_on must be createat, schedat or orderby")
        _require(self.max_lead_days is None or self.max_lead_days > 0, "max_lead_days must be > 0")
        _require(self.list_max_days is None or self.list_max_days > 0, "list_max_days must be > 0")
        _require(self.log_limit > 0, "log_limit must be > 0")
        _require(self.first_task_id is None or self.first_task_id > 0, "first_task_id must be > 0")
        _require(all(appid > 0 and key for appid, key in self.other_apps), "other_apps needs (id, key) pairs")
        appids = [self.sdkappid, *(appid for appid, _ in self.other_apps)]
        _require(len(set(appids)) == len(appids), "each app is served once (a duplicate sdkappid)")

    def key_for(self, sdkappid: int) -> str | None:
        """The key of an app this emulator serves, None for an unknown SDKAppID."""
        if sdkappid == self.sdkappid:
            return self.key
        return dict(self.other_apps).get(sdkappid)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"EmulatorSettings: {message}")
