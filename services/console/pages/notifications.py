"""The notifications bell and list: the signed-in person's sidebar reminders, mark read."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.responses import RedirectResponse
from starlette.routing import Route

from keyledger.client import Refused, Unreachable
from services.console import web
from services.console.pages.shown import failure, status_of, utc

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from keyledger.client import KeyledgerClient

_ID = re.compile(r"^[0-9a-f-]{36}$")  # contracts.notifier ReminderId
BATCH = 500  # contracts.notifier MarkRead: at most 500 ids per command


async def _administered(client: KeyledgerClient, user: str) -> set[str]:
    """The accounts the person administers now: reminders of any other stay out of sight."""
    found = await client.accounts_of(user)
    return {str(a["account_id"]) for a in found.get("accounts", [])}


async def _items(
    client: KeyledgerClient, user: str, *, unread_only: bool
) -> list[Mapping[str, Any]]:
    page = await client.notifier.sidebar(user, unread_only=unread_only)
    mine = await _administered(client, user)
    return [i for i in page.get("items", []) if i.get("account_id") in mine]


async def unread_count(client: KeyledgerClient, user: str) -> int:
    """The bell's number: unread reminders of accounts the person administers now."""
    return len(await _items(client, user, unread_only=True))


def item_row(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": item.get("id", ""),
        "account_id": item.get("account_id", ""),
        "title": item.get("title", ""),
        "message": item.get("message", ""),
        "created_at": utc(item.get("created_at")),
        "read": item.get("read_at") is not None,
    }


async def notifications(request: Request) -> Response:
    person = await web.signed_in(request)
    try:
        items = await _items(web.client(request), person.user, unread_only=False)
    except (Refused, Unreachable) as exc:
        context = {"items": [], "unread": 0, "error": failure(exc)}
        return web.render(request, "notifications.html", context, status=status_of(exc))
    rows = [item_row(i) for i in items]
    unread = sum(1 for r in rows if not r["read"])
    return web.render(request, "notifications.html", {"items": rows, "unread": unread})


async def mark_read(request: Request) -> Response:
    """`id` (one or more) or `all`; ids not the person's are ignored by the notifier."""
    person = await web.signed_in(request)
    form = await web.form(request)
    client = web.client(request)
    try:
        if form.get("all"):
            ids = [str(i["id"]) for i in await _items(client, person.user, unread_only=True)]
        else:
            ids = [i for i in form.getlist("id") if isinstance(i, str) and _ID.fullmatch(i)]
        for start in range(0, len(ids), BATCH):
            await client.notifier.mark_read(person.user, ids[start : start + BATCH])
    except (Refused, Unreachable) as exc:
        context = {"items": [], "unread": 0, "error": failure(exc)}
        return web.render(request, "notifications.html", context, status=status_of(exc))
    return RedirectResponse("/notifications", status_code=303)


routes: list[BaseRoute] = [
    Route("/notifications", notifications, methods=["GET"]),
    Route("/notifications/read", mark_read, methods=["POST"]),
]
