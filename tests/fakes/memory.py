"""One in-memory SQLite database that every connection of an engine shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.ext.asyncio import AsyncEngine


async def memory_engine(metadata: MetaData | None = None) -> AsyncEngine:
    """StaticPool: one connection, so every session sees the one database (a plain
    `sqlite://` gives each connection its own, empty one); `metadata`'s tables created."""
    engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)
    if metadata is not None:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    return engine
