"""Retention: delete calls older than 7 days, a small batch per transaction."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from services.calllog.domain import oldest_kept_us
from services.calllog.store import calls

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("keyledger.calllog")


async def delete_expired(
    engine: AsyncEngine,
    now: datetime,
    retention_seconds: float,
    *,
    batch: int = 1000,
    pause: float = 0.01,
    max_batches: int = 1000,
) -> int:
    """Delete the oldest expired rows `batch` at a time; returns how many went.

    Each batch is its own short transaction and the loop yields between them, so the
    projection's inserts interleave instead of waiting (SQLite has one writer at a time).
    Queries never depend on this: they filter on the window themselves.
    """
    cutoff = oldest_kept_us(now, retention_seconds)
    oldest_first = (
        select(calls.c.call_id).where(calls.c.ts_us <= cutoff).order_by(calls.c.ts_us).limit(batch)
    )
    total = 0
    for _ in range(max_batches):
        async with engine.begin() as conn:
            result = await conn.execute(
                delete(calls).where(calls.c.call_id.in_(oldest_first.scalar_subquery()))
            )
        gone = int(result.rowcount or 0)
        total += gone
        if gone < batch:
            break
        await asyncio.sleep(pause)
    if total:
        log.info("calllog: retention deleted %d calls older than 7 days", total)
    return total


def retention_job(
    engine: AsyncEngine, clock: Callable[[], datetime], retention_seconds: float, batch: int
) -> Callable[[], object]:
    """The scheduled job: a thin call with the current time."""

    async def run() -> int:
        return await delete_expired(engine, clock(), retention_seconds, batch=batch)

    return run
