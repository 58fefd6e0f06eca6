"""What every page uses: who is signed in, admin checks, sudo, CSRF-checked forms, rendering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from starlette.responses import HTMLResponse, RedirectResponse

from keyledger.client import Refused, Unreachable
from services.console import domain, sessions
from services.console.security import csrf_ok
from services.console.state import console

if TYPE_CHECKING:
    from datetime import datetime

    from starlette.datastructures import FormData
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import Response

    from keyledger.client import KeyledgerClient

MAX_FIELDS = 50


@dataclass(frozen=True)
class Person:
    user: str
    email: str
    session_id: str  # the session row's key (the id's hash), never the cookie's id
    sudo_until: datetime | None


class SignInRequired(Exception):
    """No live signed-in session: answered with 303 to /signin?next=<path>."""


class Forbidden(Exception):
    """Not a super-admin of the account: answered 403, naming nothing of it."""


class CsrfRefused(Exception):
    """A POST without the session's CSRF token: answered 403, nothing changed."""


async def signed_in(request: HTTPConnection) -> Person:
    """The signed-in person; also loads the layout's account list and unread count."""
    found: Person | None = getattr(request.state, "person", None)
    if found is not None:
        return found
    from services.console.users import find  # users imports argon2: only when needed

    session = await sessions.current(request)
    if session is None or session.user is None:
        raise SignInRequired
    record = await find(console(request).engine, session.user)
    if record is None:
        raise SignInRequired
    person = Person(record.user, record.email, session.id_hash, session.sudo_until)
    request.state.person = person
    request.state.accounts = await _accounts(request, person.user)
    request.state.unread = await _unread(request, person.user)
    return person


async def admin_of(request: HTTPConnection, account_id: str) -> dict[str, Any]:
    """The account entry of client.accounts_of(person.user), or Forbidden."""
    person = await signed_in(request)
    accounts: list[dict[str, Any]] | None = request.state.accounts
    if accounts is None:  # the keys service did not answer: show nothing rather than guess
        accounts = await _accounts(request, person.user, raising=True)
    for entry in accounts or []:
        if entry.get("account_id") == account_id:
            return entry
    raise Forbidden


def in_sudo(request: HTTPConnection, person: Person) -> bool:
    return domain.in_sudo(person.sudo_until, now(request))


def sudo_redirect(request: HTTPConnection) -> Response:
    return RedirectResponse(f"/sudo?next={quote(request.url.path)}", status_code=303)


async def form(request: Request) -> FormData:
    """The posted form, once its CSRF token matched the session's; else CsrfRefused."""
    data = await request.form(max_files=0, max_fields=MAX_FIELDS)
    session = await sessions.current(request)
    if session is None or not csrf_ok(session.csrf_token, data.get("csrf")):
        raise CsrfRefused
    return data


def render(
    request: HTTPConnection,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    *,
    no_store: bool = False,
) -> Response:
    """The page in the base layout: person, bell count, CSRF token and account picker."""
    session: sessions.Session | None = getattr(request.state, "console_session", None)
    base = {
        "request": request,
        "person": getattr(request.state, "person", None),
        "accounts": getattr(request.state, "accounts", None) or [],
        "unread": getattr(request.state, "unread", None),
        "csrf": session.csrf_token if session else "",
        "current_account": request.path_params.get("account_id"),
    }
    html = console(request).templates.get_template(template).render({**base, **context})
    headers = {"Cache-Control": "no-store"} if no_store else {}
    return HTMLResponse(html, status_code=status, headers=headers)


def client(request: HTTPConnection) -> KeyledgerClient:
    found = console(request).client
    if found is None:
        raise RuntimeError("the console's client is not connected (app not started)")
    return found


def now(request: HTTPConnection) -> datetime:
    return console(request).clock()


def redirect(path: str) -> Response:
    """303 to a path of this console (after a POST)."""
    return RedirectResponse(path, status_code=303)


def local_path(target: object, default: str = "/") -> str:
    """`next=` only ever leads inside the console: a path, never another site."""
    if isinstance(target, str) and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default


async def _accounts(
    request: HTTPConnection, user: str, *, raising: bool = False
) -> list[dict[str, Any]] | None:
    # accounts_of: keys.query.accounts (typed loosely until every client build has it)
    try:
        result = await cast("Any", client(request)).accounts_of(user)
    except (Refused, Unreachable):
        if raising:
            raise
        return None
    return list(result.get("accounts", []))


async def _unread(request: HTTPConnection, user: str) -> int | None:
    try:
        page = await client(request).notifier.sidebar(user, unread_only=True)
    except (Refused, Unreachable):
        return None  # the bell shows no count rather than failing the page
    accounts = getattr(request.state, "accounts", None)
    if accounts is None:
        return None
    # reminders of an account the person no longer administers stay out of sight, as on
    # the notifications page
    mine = {str(a["account_id"]) for a in accounts}
    return sum(1 for item in page.get("items", []) if item.get("account_id") in mine)
