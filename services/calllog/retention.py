"""Retention: drop PostgreSQL day partitions older than 7 days; SQLite deletes small batches."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, tuple_

from services.calllog import partitions
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
    oldest = (
        select(calls.c.call_id).where(calls.c.ts_us <= cutoff).order_by(calls.c.ts_us).limit(batch)
    )
    if engine.dialect.name == "postgresql":
        # a partitioned table's unique keys hold its partition key: (call_id, ts_us) there
        pair = tuple_(calls.c.call_id, calls.c.ts_us)
        doomed = delete(calls).where(pair.in_(oldest.add_columns(calls.c.ts_us)))
    else:
        doomed = delete(calls).where(calls.c.call_id.in_(oldest.scalar_subquery()))
    total = 0
    for _ in range(max_batches):
        async with engine.begin() as conn:
            result = await conn.execute(doomed)
        gone = int(result.rowcount or 0)
        total += gone
        if gone < batch:
            break
        await asyncio.sleep(pause)
    if total:
        log.info("calllog: retention deleted %d calls older than 7 days", total)
    return total


async def expire(
    engine: AsyncEngine, now: datetime, retention_seconds: float, *, batch: int = 1000
) -> int:
    """One retention run. PostgreSQL: the days ahead are made, then every wholly expired day
    is dropped as a partition; the partly expired day stays until it is whole (queries hide
    its old rows), since trimming it row by row is the very cost partitions remove. SQLite:
    batch deletes. Returns the partitions dropped, or the rows deleted."""
    if partitions.partitioned(engine):
        await partitions.prepare(engine, now, retention_seconds)
        return len(await partitions.drop_expired(engine, now, retention_seconds))
    return await delete_expired(engine, now, retention_seconds, batch=batch)


def retention_job(
    engine: AsyncEngine, clock: Callable[[], datetime], retention_seconds: float, batch: int
) -> Callable[[], object]:
    """The scheduled job: a thin call with the current time."""

    async def run() -> int:
        return await expire(engine, clock(), retention_seconds, batch=batch)

    return run
