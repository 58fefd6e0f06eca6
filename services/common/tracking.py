"""A projection's tracking row: the last stream sequence applied, kept with its rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Table, select

from services.common.sql import upsert

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


async def last_seq(conn: AsyncConnection, table: Table, projection: str) -> int:
    found = await conn.scalar(select(table.c.last_seq).where(table.c.projection == projection))
    return int(found or 0)


async def claim(conn: AsyncConnection, table: Table, projection: str) -> int:
    """`last_seq`, with the row created if missing and locked until the caller's transaction
    ends (a no-op upsert): a second writer of the same projection, say a replica that has
    not yet noticed it lost its partition, waits here and then sees what was applied."""
    stmt = upsert(conn, table, ["projection"], {"last_seq": table.c.last_seq})
    found = await conn.scalar(
        stmt.returning(table.c.last_seq), {"projection": projection, "last_seq": 0}
    )
    return int(found or 0)


async def position(engine: AsyncEngine, table: Table, projection: str) -> int:
    async with engine.connect() as conn:
        return await last_seq(conn, table, projection)


async def advance(
    conn: AsyncConnection, table: Table, projection: str, last: int, batch: list[int]
) -> None:
    """Move the mark to the batch's newest sequence, in the caller's transaction."""
    newest = max(batch, default=last)
    if newest > last:
        await conn.execute(
            upsert(conn, table, ["projection"], {"last_seq": newest}),
            {"projection": projection, "last_seq": newest},
        )
