"""Failed sign-ins counted per user and per client address (rules in domain.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from services.common.sql import upsert
from services.console import domain
from services.console.store import signin_failures

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncEngine


def subjects(user: str, address: str | None) -> list[str]:
    return [f"user:{user[:128]}", f"addr:{address or 'unknown'}"]


async def locked_until(
    engine: AsyncEngine, keys: list[str], now: datetime, lim: domain.Limits
) -> datetime | None:
    """The latest moment any of `keys` is locked until, or None if sign-in may be tried."""
    async with engine.connect() as db:
        rows = (
            await db.execute(select(signin_failures).where(signin_failures.c.subject.in_(keys)))
        ).all()
    locks = [domain.locked_until(r.failures, r.last_failure_at, now, lim) for r in rows]
    return max((lock for lock in locks if lock is not None), default=None)


async def failed(engine: AsyncEngine, keys: list[str], now: datetime, lim: domain.Limits) -> None:
    async with engine.begin() as db:
        for key in keys:
            row = (
                await db.execute(select(signin_failures).where(signin_failures.c.subject == key))
            ).first()
            count = domain.failures_after_failure(
                row.failures if row else 0, row.last_failure_at if row else None, now, lim
            )
            values = {"failures": count, "last_failure_at": now}
            await db.execute(
                upsert(db, signin_failures, ["subject"], values).values(subject=key, **values)
            )


async def succeeded(engine: AsyncEngine, keys: list[str]) -> None:
    async with engine.begin() as db:
        await db.execute(delete(signin_failures).where(signin_failures.c.subject.in_(keys)))
