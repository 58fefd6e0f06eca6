"""The key panel at /accounts/{account_id}/api-key and its POST actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from keyledger.client import Refused, Unreachable
from services.console import domain, web
from services.console.pages import panel_contexts
from services.console.pages.shown import utc

if TYPE_CHECKING:
    from starlette.datastructures import FormData
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from keyledger.client import KeyledgerClient


async def _live_key(client: KeyledgerClient, account_id: str) -> dict[str, Any] | None:
    try:
        return await client.live_key(account_id)
    except Refused as refused:
        if refused.code == "no_active_key":
            return None
        raise


async def _last_used(client: KeyledgerClient, account_id: str, key_id: str) -> str:
    try:
        found = await client.calls.last_used(account_id, key_id)
    except (Refused, Unreachable):
        return "unknown (the call log does not answer)"
    when = found.get("last_used_at")
    return utc(when) if when else "no call in the last 7 days"


async def _panel(
    request: Request, account_id: str, extra: dict[str, Any], status: int = 200
) -> Response:
    """The panel as it is now, with what the action adds (a key shown once, a message).

    Always no-store: a panel may carry a key, and a cached copy must never bring it back.
    """
    account = await web.admin_of(request, account_id)
    client, now = web.client(request), web.now(request)
    context: dict[str, Any] = {"account_id": account_id, "account": account, "key": None}
    try:
        key = await _live_key(client, account_id)
    except Refused as refused:
        key, context["error"] = None, refused.message
    if key is not None:
        created = _moment(key["created_at"])
        context |= {
            "key": key,
            "age": domain.age_text(created, now),
            "rotation_due": domain.rotation_due(created, now),
            "last_used": await _last_used(client, account_id, key["key_id"]),
        }
    for contribute in panel_contexts():
        context |= await contribute(request, account_id, key)
    return web.render(request, "key/panel.html", context | extra, status, no_store=True)


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def panel(request: Request) -> Response:
    return await _panel(request, request.path_params["account_id"], {})


async def _refused(request: Request, account_id: str, refused: Refused) -> Response:
    return await _panel(request, account_id, {"error": refused.message}, 409)


@dataclass(frozen=True)
class _Action:
    """A POST on the panel that passed its checks: whose account, who asks, the form."""

    account_id: str
    person: web.Person
    data: FormData

    def confirmed(self) -> bool:
        """The person typed the account's name, as Rotate and Deactivate ask."""
        return str(self.data.get("confirm", "")).strip() == self.account_id

    def expected_key_id(self) -> str | None:
        return str(self.data.get("key_id", "")) or None


async def _begin(request: Request, *, sudo: bool) -> _Action | Response:
    """The checks every action makes, in this order: a super-admin of the account (403
    otherwise), signed in, the CSRF token (403, nothing changed), then sudo mode if asked
    (a redirect to confirm the password otherwise)."""
    account_id = request.path_params["account_id"]
    await web.admin_of(request, account_id)
    person, data = await web.signed_in(request), await web.form(request)
    if sudo and not web.in_sudo(request, person):
        return web.sudo_redirect(request)
    return _Action(account_id, person, data)


async def _unconfirmed(request: Request, act: _Action, verb: str) -> Response:
    error = f"Type the account name ({act.account_id}) to {verb} its key; nothing was changed."
    return await _panel(request, act.account_id, {"error": error}, 400)


async def generate(request: Request) -> Response:
    act = await _begin(request, sudo=False)
    if not isinstance(act, _Action):
        return act
    try:
        made = await web.client(request).generate(act.account_id, act.person.user)
    except Refused as refused:
        return await _refused(request, act.account_id, refused)
    notice = "A key was generated. Copy it now; Show brings it back later (it asks your password)."
    return await _panel(request, act.account_id, {"shown_key": made["key"], "notice": notice})


async def show(request: Request) -> Response:
    act = await _begin(request, sudo=True)
    if not isinstance(act, _Action):
        return act
    try:
        shown = await web.client(request).reveal(act.account_id, act.person.user)
    except Refused as refused:
        return await _refused(request, act.account_id, refused)
    return await _panel(request, act.account_id, {"shown_key": shown["key"]})


async def rotate(request: Request) -> Response:
    act = await _begin(request, sudo=True)
    if not isinstance(act, _Action):
        return act
    grace = domain.grace_seconds(str(act.data.get("grace", "")))
    if grace is None:
        return await _panel(request, act.account_id, {"error": "Choose a grace period."}, 400)
    if not act.confirmed():
        return await _unconfirmed(request, act, "rotate")
    try:
        made = await web.client(request).rotate(
            act.account_id,
            act.person.user,
            confirm=True,
            grace_seconds=grace,
            expected_key_id=act.expected_key_id(),
        )
    except Refused as refused:
        return await _refused(request, act.account_id, refused)
    until = made.get("previous_key_grace_until")
    notice = "The key was rotated. Copy the new key now. " + (
        f"The old key keeps working until {until}." if until else "The old key stopped working."
    )
    return await _panel(request, act.account_id, {"shown_key": made["key"], "notice": notice})


async def deactivate(request: Request) -> Response:
    act = await _begin(request, sudo=True)
    if not isinstance(act, _Action):
        return act
    if not act.confirmed():
        return await _unconfirmed(request, act, "deactivate")
    try:
        await web.client(request).deactivate(
            act.account_id, act.person.user, confirm=True, expected_key_id=act.expected_key_id()
        )
    except Refused as refused:
        return await _refused(request, act.account_id, refused)
    notice = "The key was deactivated: calls with it are refused from now on."
    return await _panel(request, act.account_id, {"notice": notice})


async def back_to_panel(request: Request) -> Response:
    """A POST-only address reached by GET (after sudo): back to the panel, nothing done."""
    account_id = request.path_params["account_id"]
    await web.admin_of(request, account_id)
    return web.redirect(f"/accounts/{account_id}/api-key")


BASE = "/accounts/{account_id}/api-key"
routes: list[BaseRoute] = [
    Route(BASE, panel, methods=["GET"]),
    Route(f"{BASE}/generate", generate, methods=["POST"]),
    Route(f"{BASE}/show", show, methods=["POST"]),
    Route(f"{BASE}/rotate", rotate, methods=["POST"]),
    Route(f"{BASE}/deactivate", deactivate, methods=["POST"]),
    Route(BASE + "/{action:str}", back_to_panel, methods=["GET"]),
]
