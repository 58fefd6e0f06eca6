"""Dialect-aware INSERT ... ON CONFLICT for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


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
