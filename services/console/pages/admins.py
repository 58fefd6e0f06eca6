"""Super-admins of an account on the key page: the list, grant (user + email) and revoke."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import RedirectResponse
from starlette.routing import Route

from keyledger.client import Refused, Unreachable
from services.console import web
from services.console.pages.shown import failure, status_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute


def admins_panel(account: Mapping[str, Any], person: web.Person) -> dict[str, Any]:
    """Context for key/_admins.html (as `admins`), from the account entry admin_of gave."""
    names = sorted(str(n) for n in account.get("super_admins", []))
    return {"names": names, "me": person.user, "last": len(names) <= 1}


async def key_panel_context(
    request: Request, account_id: str, key: dict[str, Any] | None
) -> dict[str, Any]:
    """What pages/key.py merges into key/panel.html's context for key/_admins.html."""
    account = await web.admin_of(request, account_id)  # the entry web.signed_in loaded
    return {"admins": admins_panel(account, await web.signed_in(request))}


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def _change(request: Request, verb: str) -> Response:
    """Both POSTs: 403 for a non-admin, CSRF checked, the signed-in person as the actor."""
    account_id = request.path_params["account_id"]
    person = await web.signed_in(request)
    await web.admin_of(request, account_id)
    form = await web.form(request)
    user = _field(form, "user")
    client = web.client(request)
    try:
        if verb == "grant":
            await client.grant_admin(account_id, person.user, user, _field(form, "email"))
        else:
            await client.revoke_admin(account_id, person.user, user)
    except (Refused, Unreachable) as exc:
        # the account entry again: the refusal may be about a change made meanwhile
        account = await web.admin_of(request, account_id)
        context = {
            "account_id": account_id,
            "admins": admins_panel(account, person),
            "refusal": failure(exc),
            "verb": verb,
            "user": user,
        }
        return web.render(request, "admins_refused.html", context, status=status_of(exc))
    return RedirectResponse(f"/accounts/{account_id}/api-key#admins", status_code=303)


async def grant(request: Request) -> Response:
    return await _change(request, "grant")


async def revoke(request: Request) -> Response:
    return await _change(request, "revoke")


routes: list[BaseRoute] = [
    Route("/accounts/{account_id}/admins/grant", grant, methods=["POST"]),
    Route("/accounts/{account_id}/admins/revoke", revoke, methods=["POST"]),
]
