"""Server-side sessions: a random id in an HttpOnly cookie, only its sha-256 in the table."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from services.console import domain
from services.console.state import console
from services.console.store import sessions

if TYPE_CHECKING:
    from datetime import datetime

    from starlette.requests import HTTPConnection

COOKIE = "keyledger_console"
_CACHE = "console_session"  # request.state: the session this request found or made
SET_COOKIE = "console_cookie"  # request.state: the Set-Cookie value security.py adds


@dataclass(frozen=True)
class Session:
    id_hash: str
    user: str | None
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    sudo_until: datetime | None


def hashed(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def current(conn: HTTPConnection) -> Session | None:
    """The request's live session (its idle clock restarted), or None; an expired one is
    deleted on sight."""
    cached: Session | None = getattr(conn.state, _CACHE, None)
    if cached is not None:
        return cached
    raw = conn.cookies.get(COOKIE)
    if not raw or len(raw) > 128:
        return None
    app, id_hash = console(conn), hashed(raw)
    now = app.clock()
    async with app.engine.begin() as db:
        row = (await db.execute(select(sessions).where(sessions.c.id_hash == id_hash))).first()
        if row is None:
            return None
        if not domain.session_alive(row.created_at, row.last_seen_at, now, app.limits):
            await db.execute(delete(sessions).where(sessions.c.id_hash == id_hash))
            return None
        await db.execute(
            update(sessions).where(sessions.c.id_hash == id_hash).values(last_seen_at=now)
        )
    found = Session(id_hash, row.user, row.csrf_token, row.created_at, now, row.sudo_until)
    setattr(conn.state, _CACHE, found)
    return found


async def ensure(conn: HTTPConnection) -> Session:
    """The current session, or a new one before sign-in (it carries the CSRF token)."""
    return await current(conn) or await _create(conn, None)


async def begin(conn: HTTPConnection, user: str) -> Session:
    """Sign `user` in under a new id: the id used before sign-in is deleted, never promoted."""
    await end(conn)
    return await _create(conn, user)


async def end(conn: HTTPConnection) -> None:
    """Delete the request's session row and clear the cookie."""
    raw = conn.cookies.get(COOKIE)
    if raw:
        async with console(conn).engine.begin() as db:
            await db.execute(delete(sessions).where(sessions.c.id_hash == hashed(raw)))
    setattr(conn.state, _CACHE, None)
    _cookie(conn, "", clear=True)


async def grant_sudo(conn: HTTPConnection, session: Session) -> datetime:
    app = console(conn)
    until = domain.sudo_until(app.clock(), app.limits)
    async with app.engine.begin() as db:
        await db.execute(
            update(sessions).where(sessions.c.id_hash == session.id_hash).values(sudo_until=until)
        )
    return until


async def purge_expired(conn: HTTPConnection) -> None:
    """Drop sessions past either limit (run at sign-in, so the table stays small)."""
    app = console(conn)
    now = app.clock()
    async with app.engine.begin() as db:
        await db.execute(
            delete(sessions).where(
                (sessions.c.last_seen_at <= now - app.limits.session_idle)
                | (sessions.c.created_at <= now - app.limits.session_absolute)
            )
        )


async def _create(conn: HTTPConnection, user: str | None) -> Session:
    app = console(conn)
    raw, now = secrets.token_urlsafe(32), app.clock()
    made = Session(hashed(raw), user, secrets.token_urlsafe(32), now, now, None)
    async with app.engine.begin() as db:
        await db.execute(
            sessions.insert().values(
                id_hash=made.id_hash,
                user=user,
                csrf_token=made.csrf_token,
                created_at=now,
                last_seen_at=now,
                sudo_until=None,
            )
        )
    setattr(conn.state, _CACHE, made)
    _cookie(conn, raw)
    return made


def _cookie(conn: HTTPConnection, raw: str, *, clear: bool = False) -> None:
    parts = [f"{COOKIE}={raw}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if console(conn).settings.secure_cookies():
        parts.append("Secure")
    if clear:
        parts.append("Max-Age=0")
    setattr(conn.state, SET_COOKIE, "; ".join(parts))
