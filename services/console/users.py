"""People of the console: argon2id passwords, one-time setup links, TOTP."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update

from services.common.migrate import upgrade_to_head
from services.common.sql import make_engine
from services.console import domain
from services.console.migrations import MIGRATIONS
from services.console.store import setup_tokens, users

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
# verified against when the user is unknown, so both answers take as long
_DUMMY = HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    user: str
    email: str
    password_hash: str | None
    totp_secret: str | None


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def find(engine: AsyncEngine, user: str) -> User | None:
    async with engine.connect() as db:
        row = (await db.execute(select(users).where(users.c.user == user))).first()
    if row is None:
        return None
    return User(row.user, row.email, row.password_hash, row.totp_secret)


async def add(engine: AsyncEngine, user: str, email: str, now: datetime) -> bool:
    """Create the person if missing (True); an existing one is left as it is (False)."""
    async with engine.begin() as db:
        found = (await db.execute(select(users.c.user).where(users.c.user == user))).first()
        if found is not None:
            return False
        await db.execute(users.insert().values(user=user, email=email, created_at=now))
    return True


async def new_setup_token(
    engine: AsyncEngine, user: str, now: datetime, lifetime: timedelta = timedelta(hours=24)
) -> str:
    """A fresh single-use token for `user`; only its sha-256 is stored."""
    raw = secrets.token_urlsafe(32)
    async with engine.begin() as db:
        await db.execute(
            setup_tokens.insert().values(
                token_hash=token_hash(raw),
                user=user,
                created_at=now,
                expires_at=now + lifetime,
                used=False,
            )
        )
    return raw


async def setup_token_user(engine: AsyncEngine, raw: str, now: datetime) -> str | None:
    """Whose setup link this is, if it is still usable (not used, not expired)."""
    async with engine.connect() as db:
        row = await _usable_token(db, raw, now)
    return None if row is None else str(row.user)


async def use_setup_token(
    engine: AsyncEngine, raw: str, password: str, now: datetime
) -> str | None:
    """Set the password through the link and spend it; None if it was not usable.

    One conditional UPDATE spends the token, so two submissions at once cannot both win.
    """
    hashed = HASHER.hash(password)
    async with engine.begin() as db:
        row = await _usable_token(db, raw, now)
        if row is None:
            return None
        spent = await db.execute(
            update(setup_tokens)
            .where(setup_tokens.c.token_hash == row.token_hash, setup_tokens.c.used.is_(False))
            .values(used=True)
        )
        if spent.rowcount != 1:
            return None
        await db.execute(update(users).where(users.c.user == row.user).values(password_hash=hashed))
    return str(row.user)


def password_matches(record: User | None, password: str) -> bool:
    """argon2id verification; an unknown user or one without a password costs the same."""
    stored = record.password_hash if record and record.password_hash else None
    try:
        return HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def totp_matches(secret: str, code: str, now: datetime) -> bool:
    """A six-digit code of `secret` at `now` (one step either side for clock drift)."""
    code = code.strip().replace(" ", "")
    return code.isdigit() and pyotp.TOTP(secret).verify(code, for_time=now, valid_window=1)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, user: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user, issuer_name="keyledger console")


async def enable_totp(
    engine: AsyncEngine, user: str, secret: str, code: str, now: datetime
) -> bool:
    """Turn TOTP on once a code from the new secret confirms the app has it."""
    if not totp_matches(secret, code, now):
        return False
    async with engine.begin() as db:
        await db.execute(update(users).where(users.c.user == user).values(totp_secret=secret))
    return True


async def disable_totp(engine: AsyncEngine, user: str) -> None:
    async with engine.begin() as db:
        await db.execute(update(users).where(users.c.user == user).values(totp_secret=None))


async def setup_link_for_new_user(
    db_url: str, user: str, email: str, console_url: str, now: datetime
) -> str:
    """`<console_url>/setup/<token>` for `user` (created if missing): always a fresh link.

    Used by `keyledger console user add` and `keyledger up --dev`; migrates the database first.
    """
    engine = make_engine(db_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        await add(engine, user, email, now)
        raw = await new_setup_token(engine, user, now)
    finally:
        await engine.dispose()
    return f"{console_url.rstrip('/')}/setup/{raw}"


async def _usable_token(db: AsyncConnection, raw: str, now: datetime) -> Row[Any] | None:
    """The setup link's row while it is usable (not used, not expired), else None."""
    found = await db.execute(
        select(setup_tokens).where(setup_tokens.c.token_hash == token_hash(raw))
    )
    row = found.first()
    if row is None or not domain.setup_token_usable(row.expires_at, row.used, now):
        return None
    return row
