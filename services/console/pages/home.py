"""`/`: the first account the person administers, or an empty state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from keyledger.client import Unreachable
from services.console import web

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute


async def home(request: Request) -> Response:
    await web.signed_in(request)
    accounts: list[dict[str, Any]] | None = request.state.accounts
    if accounts is None:
        raise Unreachable("the keys service does not answer; try again in a moment")
    ids = [str(entry["account_id"]) for entry in accounts]
    chosen = request.query_params.get("account")  # the account picker without JavaScript
    if chosen in ids:
        return web.redirect(f"/accounts/{chosen}/api-key")
    if ids:
        return web.redirect(f"/accounts/{ids[0]}/api-key")
    return web.render(request, "home.html", {})


routes: list[BaseRoute] = [Route("/", home, methods=["GET"])]
