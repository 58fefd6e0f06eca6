"""The key page's grace panel: who still calls with the previous key while it is in grace."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from keyledger.client import Refused, Unreachable
from services.console import web
from services.console.pages.shown import failure, moment, utc

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from starlette.requests import Request
    from starlette.routing import BaseRoute

WINDOW = timedelta(hours=1)

routes: list[BaseRoute] = []  # a panel of the key page (key_panel_context)


def in_grace(live: Mapping[str, Any] | None, now: datetime) -> tuple[str, datetime] | None:
    """(previous key id, grace end) while the previous key still verifies, else None.

    Read from the live key's `previous_key_id` / `previous_key_grace_until` (the fields of
    a rotate's KeyResult; keys.query.key does not carry them yet), so the key page can
    also pass a rotate's result here.
    """
    if not live or not live.get("previous_key_id"):
        return None
    until = moment(live.get("previous_key_grace_until"))
    if until is None or until <= now:
        return None
    return str(live["previous_key_id"]), until


async def key_panel_context(
    request: Request, account_id: str, key: dict[str, Any] | None
) -> dict[str, Any]:
    """What pages/key.py merges into key/panel.html's context for key/_grace.html."""
    return {"grace": await grace_panel(request, account_id, key)}


async def grace_panel(
    request: Request, account_id: str, live: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Context for key/_grace.html (as `grace`); None when no key is in grace."""
    now = web.now(request)
    found = in_grace(live, now)
    if found is None:
        return None
    key_id, until = found
    shown: dict[str, Any] = {"key_id": key_id, "until": utc(until), "error": None}
    try:
        seen = await web.client(request).calls.clients(account_id, key_id, now - WINDOW)
    except (Refused, Unreachable) as exc:
        return shown | {"calls": 0, "last_at": "", "clients": [], "error": failure(exc)}
    clients = [
        {
            "caller_ip": c.get("caller_ip") or "unknown",
            "user_agent": c.get("user_agent") or "none sent",
            "calls": int(c.get("calls", 0)),
            "last_at": utc(c.get("last_at")),
        }
        for c in seen.get("clients", [])
    ]
    return shown | {
        "calls": int(seen.get("calls", 0)),
        "last_at": utc(seen.get("last_at")),
        "clients": clients,
    }
