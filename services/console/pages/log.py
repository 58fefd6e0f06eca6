"""The key page's Log panel: the account's audit log, newest first, paged by sequence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keyledger.client import Refused, Unreachable
from services.console import web
from services.console.pages.shown import failure, utc

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request
    from starlette.routing import BaseRoute

PAGE = 20
# audit actions (services/keys/projection.py) as a person reads them
WHAT = {
    "account_opened": "opened the account",
    "admin_granted": "granted super-admin to {user}",
    "admin_revoked": "revoked super-admin from {user}",
    "created": "created key {hint}",
    "viewed": "viewed key {hint}",
    "rotated": "rotated the key; new key {hint}",
    "deactivated": "deactivated key {hint}",
}

routes: list[BaseRoute] = []  # a panel of the key page (key_panel_context); pages: ?before=


def what(item: Mapping[str, Any]) -> str:
    """`granted super-admin to bob`, `rotated the key; new key klk_…x7q2`; unknown: as is."""
    template = WHAT.get(str(item.get("action")), str(item.get("action")))
    hint = item.get("key_hint") or item.get("key_id") or ""
    return template.format(user=item.get("user") or "?", hint=hint).strip()


def via(item: Mapping[str, Any]) -> str | None:
    """The frontend that vouched for the command (its user, else its account), if any."""
    found = item.get("via")
    if not isinstance(found, dict) or not found.get("account"):
        return None
    return str(found.get("user") or found["account"])


def row(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "time": utc(item.get("occurred_at")),
        "person": item.get("actor", ""),
        "what": what(item),
        "via": via(item),
    }


def before_of(request: Request) -> int | None:
    """The `before` cursor from the query string; anything but a positive number: none."""
    text = request.query_params.get("before", "")
    return int(text) if text.isdigit() and 0 < int(text) < 2**31 else None


async def key_panel_context(
    request: Request, account_id: str, key: dict[str, Any] | None
) -> dict[str, Any]:
    """What pages/key.py merges into key/panel.html's context for key/_log.html."""
    return {"log": await log_panel(request, account_id)}


async def log_panel(request: Request, account_id: str) -> dict[str, Any]:
    """Context for key/_log.html (as `log`): rows, the next page's cursor, or an error."""
    before = before_of(request)
    try:
        page = await web.client(request).audit(account_id, PAGE, before)
    except (Refused, Unreachable) as exc:
        return {"rows": [], "next_before": None, "paged": before is not None, "error": failure(exc)}
    return {
        "rows": [row(item) for item in page.get("items", [])],
        "next_before": page.get("next_cursor"),
        "paged": before is not None,
        "error": None,
    }
