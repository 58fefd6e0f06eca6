"""The API calls tab: an account's calls of the last 7 days, filtered, paged, and charted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.routing import Route

from contracts.calllog import KEY_ID, MAX_PATH
from keyledger.client import Refused, Unreachable
from services.console import chart, web
from services.console.pages.shown import failure, status_of, utc

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

PAGE = 50
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
_KEY = re.compile(KEY_ID)


@dataclass(frozen=True, slots=True)
class Filters:
    """What the query string asks for, checked; `problems` names what was left out and why."""

    status: str | None = None
    path: str | None = None
    key: str | None = None
    cursor: str | None = None
    by: str = "hour"
    problems: tuple[str, ...] = ()

    def query(self, **changes: str | None) -> str:
        """`?status=4xx&...` for a link keeping these filters (cursor dropped unless given)."""
        values = {"status": self.status, "path": self.path, "key": self.key, "by": self.by}
        values = values | {"cursor": None} | changes
        kept = {k: v for k, v in values.items() if v and not (k == "by" and v == "hour")}
        return "?" + urlencode(kept) if kept else "?"


def filters_of(params: Mapping[str, str]) -> Filters:
    """Pure: the tab's query string as Filters; a bad value is dropped with a problem."""
    problems = []
    status = params.get("status") or None
    if status is not None and status not in STATUS_CLASSES:
        problems.append("Status class must be one of 2xx, 3xx, 4xx, 5xx.")
        status = None
    path = (params.get("path") or "").strip() or None
    if path is not None and (not path.startswith("/") or len(path) > MAX_PATH):
        problems.append("A path prefix starts with / (for example /v1/contacts).")
        path = None
    key = (params.get("key") or "").strip() or None
    if key is not None and not _KEY.fullmatch(key):
        problems.append("That is not a key id (key ids look like key_…, never the key itself).")
        key = None
    cursor = params.get("cursor") or None
    if cursor is not None and len(cursor) > 128:
        cursor = None
    by = "day" if params.get("by") == "day" else "hour"
    return Filters(status, path, key, cursor, by, tuple(problems))


def call_row(item: Mapping[str, Any]) -> dict[str, Any]:
    status = int(item.get("status", 0))
    return {
        "time": utc(item.get("ts")),
        "method": item.get("method", ""),
        "path": item.get("path", ""),
        "status": status,
        "status_class": f"{status // 100}xx",
        "duration": f"{float(item.get('duration_ms', 0)):.1f}",
        "key_id": item.get("key_id", ""),
        "caller_ip": item.get("caller_ip") or "",
        "user_agent": item.get("user_agent") or "",
    }


def chart_context(stats: Mapping[str, Any], by: str) -> dict[str, Any]:
    """The SVG (marked safe: chart.svg escapes every text) and its table alternative."""
    bars = chart.bars_from(stats.get("buckets", []))
    unit = "day" if by == "day" else "hour"
    title = f"Calls per {unit} in the last 7 days, by status class"
    return {
        "svg": Markup(chart.svg(bars, by=by, title=title)),  # chart.svg escapes every text
        "title": title,
        "unit": unit,
        "total": int(stats.get("total", 0)),
        "by_class": chart.class_totals(bars),
        "rows": [
            {"label": chart.label(b.start, by), "counts": b.counts, "total": b.total}
            for b in bars
            if b.total
        ],
        "keys": [str(k.get("key_id")) for k in stats.get("keys", [])],
    }


async def api_calls(request: Request) -> Response:
    account_id = request.path_params["account_id"]
    await web.admin_of(request, account_id)
    f = filters_of(request.query_params)
    client = web.client(request)
    context: dict[str, Any] = {"account_id": account_id, "f": f, "problems": list(f.problems)}
    try:
        stats = await client.calls.stats(account_id, by=f.by, key_id=f.key)
        page = await client.calls.list(
            account_id,
            limit=PAGE,
            key_id=f.key,
            status=f.status,
            path_prefix=f.path,
            cursor=f.cursor,
        )
    except (Refused, Unreachable) as exc:
        context |= {"error": failure(exc), "calls": [], "chart": None, "next": None}
        return web.render(request, "calls.html", context, status=status_of(exc))
    cursor = page.get("next_cursor")
    filtered = bool(f.status or f.path or f.key)
    charted = chart_context(stats, f.by)
    keys = charted["keys"]
    context |= {
        "error": None,
        "calls": [call_row(i) for i in page.get("items", [])],
        "chart": charted,
        "next": f.query(cursor=cursor) if cursor else None,
        "newest": f.query() if f.cursor else None,
        "filtered": filtered,
        "clear": f"/accounts/{account_id}/api-calls",
        "by_hour": f.query(by="hour"),
        "by_day": f.query(by="day"),
        "key_options": keys if not f.key or f.key in keys else [*keys, f.key],
        "classes": STATUS_CLASSES,
    }
    return web.render(request, "calls.html", context)


routes: list[BaseRoute] = [Route("/accounts/{account_id}/api-calls", api_calls, methods=["GET"])]
