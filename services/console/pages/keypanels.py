"""What the key page adds from the page areas: the grace, log and super-admins panels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.console import web
from services.console.pages.admins import admins_panel
from services.console.pages.grace import grace_panel
from services.console.pages.log import log_panel

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request
    from starlette.routing import BaseRoute

routes: list[BaseRoute] = []  # the key page (pages/key.py) calls key_panels


async def key_panels(
    request: Request,
    account_id: str,
    account: Mapping[str, Any],
    live: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Context for key/_grace.html, key/_log.html and key/_admins.html (`grace`, `log`,
    `admins`); `account` is what web.admin_of returned, `live` the live key (or a rotate's
    result, which names the previous key and its grace end), None without a key."""
    person = await web.signed_in(request)
    return {
        "grace": await grace_panel(request, account_id, live),
        "log": await log_panel(request, account_id),
        "admins": admins_panel(account, person),
    }
