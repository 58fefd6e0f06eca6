"""Sign-in, sign-out, setup links, sudo and the profile (TOTP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from services.console import sessions, throttle, users, web
from services.console.domain import password_problem
from services.console.state import console

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

WRONG = "Wrong user name, password or code."


def _retry_text(until: datetime) -> str:
    return (
        "Too many failed attempts: sign-in is paused for this user or address. "
        f"Try again after {until:%Y-%m-%d %H:%M} UTC."
    )


async def _check_credentials(request: Request, user: str, password: str, code: str) -> str | None:
    """None if the password (and the TOTP code, if on) are right; else what to tell.

    While the user or the address is locked out, no password is checked at all.
    """
    app = console(request)
    now, keys = (
        app.clock(),
        throttle.subjects(user, request.client.host if request.client else None),
    )
    until = await throttle.locked_until(app.engine, keys, now, app.limits)
    if until is not None:
        return _retry_text(until)
    record = await users.find(app.engine, user)
    ok = users.password_matches(record, password)
    if ok and record is not None and record.totp_secret:
        ok = users.totp_matches(record.totp_secret, code, now)
    if not ok:
        await throttle.failed(app.engine, keys, now, app.limits)
        return WRONG
    await throttle.succeeded(app.engine, keys)
    return None


async def signin_page(request: Request) -> Response:
    target = web.local_path(request.query_params.get("next"))
    if (current := await sessions.current(request)) is not None and current.user:
        return web.redirect(target)
    await sessions.ensure(request)
    return web.render(request, "auth/signin.html", {"next": target}, no_store=True)


async def signin(request: Request) -> Response:
    data = await web.form(request)
    user, password = str(data.get("user", "")).strip(), str(data.get("password", ""))
    target = web.local_path(data.get("next"))
    problem = await _check_credentials(request, user, password, str(data.get("code", "")))
    if problem is not None:
        status = 400 if problem == WRONG else 429
        context = {"next": target, "error": problem, "user": user}
        return web.render(request, "auth/signin.html", context, status, no_store=True)
    await sessions.purge_expired(request)
    await sessions.begin(request, user)
    return web.redirect(target)


async def signout(request: Request) -> Response:
    await web.form(request)
    await sessions.end(request)
    return web.redirect("/signin")


async def setup_page(request: Request) -> Response:
    app = console(request)
    user = await users.setup_token_user(app.engine, request.path_params["token"], app.clock())
    if user is None:
        return _spent_link(request)
    await sessions.ensure(request)
    return web.render(request, "auth/setup.html", {"user": user}, no_store=True)


async def setup(request: Request) -> Response:
    data = await web.form(request)
    app, token = console(request), request.path_params["token"]
    user = await users.setup_token_user(app.engine, token, app.clock())
    if user is None:
        return _spent_link(request)
    password, repeated = str(data.get("password", "")), str(data.get("repeat", ""))
    if (problem := password_problem(user, password, repeated)) is not None:
        context = {"user": user, "error": problem}
        return web.render(request, "auth/setup.html", context, 400, no_store=True)
    if await users.use_setup_token(app.engine, token, password, app.clock()) is None:
        return _spent_link(request)
    notice = "Your password is set. Sign in with it."
    return web.render(request, "auth/signin.html", {"next": "/", "notice": notice, "user": user})


def _spent_link(request: Request) -> Response:
    message = (
        "This setup link is not valid: it was used already, it expired, or it was never "
        "issued. Ask an operator for a new one (keyledger console user add)."
    )
    return web.render(request, "error.html", {"title": "Link not valid", "message": message}, 404)


async def sudo_page(request: Request) -> Response:
    person = await web.signed_in(request)
    record = await users.find(console(request).engine, person.user)
    context = {
        "next": web.local_path(request.query_params.get("next")),
        "totp": bool(record and record.totp_secret),
    }
    return web.render(request, "auth/sudo.html", context, no_store=True)


async def sudo(request: Request) -> Response:
    person = await web.signed_in(request)
    data = await web.form(request)
    target = web.local_path(data.get("next"))
    password, code = str(data.get("password", "")), str(data.get("code", ""))
    problem = await _check_credentials(request, person.user, password, code)
    if problem is not None:
        record = await users.find(console(request).engine, person.user)
        context = {"next": target, "error": problem, "totp": bool(record and record.totp_secret)}
        return web.render(request, "auth/sudo.html", context, 400, no_store=True)
    session = await sessions.current(request)
    assert session is not None  # signed_in found it
    await sessions.grant_sudo(request, session)
    return web.redirect(target)


async def profile_page(request: Request) -> Response:
    person = await web.signed_in(request)
    return await _profile(request, person.user, {})


async def _profile(
    request: Request, user: str, extra: Mapping[str, object], status: int = 200
) -> Response:
    record = await users.find(console(request).engine, user)
    context: dict[str, object] = {"totp_on": bool(record and record.totp_secret)}
    if not context["totp_on"]:
        secret = str(extra.get("secret") or users.new_totp_secret())
        context |= {"secret": secret, "totp_uri": users.totp_uri(secret, user)}
    return web.render(request, "auth/profile.html", {**context, **extra}, status, no_store=True)


async def totp_enable(request: Request) -> Response:
    person = await web.signed_in(request)
    data = await web.form(request)
    if not web.in_sudo(request, person):
        return web.sudo_redirect(request)
    secret, code = str(data.get("secret", "")), str(data.get("code", ""))
    app = console(request)
    if not secret or not await users.enable_totp(
        app.engine, person.user, secret, code, app.clock()
    ):
        extra = {"secret": secret, "error": "That code does not match; try the current one."}
        return await _profile(request, person.user, extra, 400)
    return await _profile(request, person.user, {"notice": "Two-factor sign-in is on."})


async def totp_disable(request: Request) -> Response:
    person = await web.signed_in(request)
    await web.form(request)
    if not web.in_sudo(request, person):
        return web.sudo_redirect(request)
    await users.disable_totp(console(request).engine, person.user)
    return await _profile(request, person.user, {"notice": "Two-factor sign-in is off."})


async def to_profile(request: Request) -> Response:
    return web.redirect("/profile")  # after sudo, a POST-only address leads back to its page


routes: list[BaseRoute] = [
    Route("/signin", signin_page, methods=["GET"]),
    Route("/signin", signin, methods=["POST"]),
    Route("/signout", signout, methods=["POST"]),
    Route("/setup/{token}", setup_page, methods=["GET"]),
    Route("/setup/{token}", setup, methods=["POST"]),
    Route("/sudo", sudo_page, methods=["GET"]),
    Route("/sudo", sudo, methods=["POST"]),
    Route("/profile", profile_page, methods=["GET"]),
    Route("/profile/totp/enable", totp_enable, methods=["POST"]),
    Route("/profile/totp/disable", totp_disable, methods=["POST"]),
    Route("/profile/totp/{action}", to_profile, methods=["GET"]),
]
