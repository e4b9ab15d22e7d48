"""list_sched_task: its query (API.md §1.7) and the filtering, ordering and paging of tasks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from timpush.emulator.settings import EmulatorSettings
from timpush.emulator.tasks import Task
from timpush.emulator.validation import Body, invalid, is_int, parse_time

ORDERS = ("createat", "schedat")
_DAY = 86400
_StampOf = Callable[[Task], int]


@dataclass(frozen=True)
class ListQuery:
    offset: int
    want: int
    order_by: str  # lower case: createat or schedat
    asc: bool
    begin: int | None = None
    end: int | None = None
    keyword: str = ""


def parse_list_query(body: Body, settings: EmulatorSettings) -> ListQuery:
    offset, want, order_by, asc = (body.get(name) for name in ("Offset", "Want", "OrderBy", "Asc"))
    if not is_int(offset) or offset < 0:
        raise invalid("invalid Offset: must be an integer >= 0")
    if not is_int(want) or want <= 0:
        raise invalid("invalid Want: must be an integer > 0")
    if not isinstance(order_by, str) or order_by.lower() not in ORDERS:
        raise invalid("invalid OrderBy: must be createat or schedat")
    if not isinstance(asc, bool):
        raise invalid("invalid Asc: must be true or false")
    keyword = body.get("Keyword", "")
    if not isinstance(keyword, str):
        raise invalid("invalid Keyword: must be a string")
    begin, end = _time_range(body, settings.list_max_days)
    return ListQuery(offset, want, order_by.lower(), asc, begin, end, keyword)


def _time_range(body: Body, max_days: float | None) -> tuple[int | None, int | None]:
    if ("BeginTime" in body) != ("EndTime" in body):
        raise invalid("invalid BeginTime/EndTime: they must be set together")
    if "BeginTime" not in body:
        return None, None
    begin, end = parse_time(body["BeginTime"], "BeginTime"), parse_time(body["EndTime"], "EndTime")
    if begin > end:
        raise invalid("invalid BeginTime: later than EndTime")
    if max_days is not None and end - begin > max_days * _DAY:
        raise invalid(f"invalid BeginTime/EndTime: the range exceeds {max_days:g} days")
    return begin, end


def select(tasks: Iterable[Task], query: ListQuery, filter_on: str) -> tuple[int, list[Task]]:
    """The number of matching tasks, and the page of them the query asks for."""
    stamp_of = _stamp(query.order_by if filter_on == "orderby" else filter_on)
    order_of = _stamp(query.order_by)
    matches = [task for task in tasks if _in_range(stamp_of(task), query) and _has_keyword(task, query)]
    matches.sort(key=lambda task: (order_of(task), task.task_id), reverse=not query.asc)
    return len(matches), matches[query.offset : query.offset + query.want]


def _stamp(name: str) -> _StampOf:
    return (lambda task: task.create_at) if name == "createat" else (lambda task: task.sched_at)


def _in_range(stamp: int, query: ListQuery) -> bool:
    if query.begin is None or query.end is None:
        return True
    return query.begin <= stamp <= query.end


def _has_keyword(task: Task, query: ListQuery) -> bool:
    # "Fuzzy match on task title or description": a case-insensitive substring is the reading here.
    if not query.keyword:
        return True
    info = task.content.get("OfflinePushInfo")
    texts = [info.get("Title"), info.get("Desc")] if isinstance(info, dict) else []
    wanted = query.keyword.casefold()
    return any(isinstance(text, str) and wanted in text.casefold() for text in texts)
