"""SQL helpers shared by the services: engines, UTC times, dialect-aware upserts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def _insert(conn: AsyncConnection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignore(conn: AsyncConnection, table: Table, keys: list[str]) -> Any:
    """Insert rows, silently keeping the existing row on a key clash (redelivery, replay)."""
    return _insert(conn, table).on_conflict_do_nothing(index_elements=keys)


def upsert(conn: AsyncConnection, table: Table, keys: list[str], values: dict[str, Any]) -> Any:
    stmt = _insert(conn, table)
    return stmt.on_conflict_do_update(index_elements=keys, set_=values)


def make_engine(url: str) -> AsyncEngine:
    """One engine per process; SQLite gets a busy timeout so replicas wait instead of failing."""
    if url.startswith("sqlite"):
        return create_async_engine(url, connect_args={"timeout": 30})
    return create_async_engine(url, pool_size=10, max_overflow=10)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
