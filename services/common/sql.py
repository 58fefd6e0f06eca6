"""SQL helpers shared by the services: engines, SQLite WAL, UTC times, dialect-aware upserts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Dialect, Table, TypeDecorator, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from services.common.micros import from_micros, to_micros


class UtcMicros(TypeDecorator[datetime]):
    """A time column stored as BIGINT microseconds since the epoch, UTC: exact, ordered as
    the instants are and the same on SQLite and PostgreSQL. Every store keeps its times so.

    Binds take aware datetimes only (a naive one raises ValueError: a bug, not data); a
    value compared with the column is bound through here too. Reads give aware UTC.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        return None if value is None else to_micros(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        return None if value is None else from_micros(value)


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


def upsert_newer(conn: AsyncConnection, table: Table, order: str) -> Any:
    """Insert rows; on a key clash the stored row is replaced only by a newer one (greater
    `order`), so writers that are behind never move a row back."""
    stmt = _insert(conn, table)
    keys = [column.name for column in table.primary_key]
    values = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
    return stmt.on_conflict_do_update(
        index_elements=keys, set_=values, where=table.c[order] < stmt.excluded[order]
    )


def make_engine(url: str) -> AsyncEngine:
    """One engine per process; SQLite gets a busy timeout so replicas wait instead of failing."""
    if url.startswith("sqlite"):
        return create_async_engine(url, connect_args={"timeout": 30})
    return create_async_engine(url, pool_size=10, max_overflow=10)


def use_wal(engine: AsyncEngine, *, begin_immediate: bool = False) -> None:
    """SQLite in WAL mode, so readers never wait for the writer (a rollback journal makes
    every reader wait for each commit); nothing to do on PostgreSQL.

    begin_immediate: every transaction takes the write lock at BEGIN. For several processes
    writing one file: a read lock upgraded later fails at once, without waiting, when another
    process writes (SQLITE_BUSY), and the busy timeout cannot help.
    """
    if engine.dialect.name != "sqlite":
        return

    def _connect(dbapi_conn: Any, _record: Any) -> None:
        if begin_immediate:
            # take over transaction control so every transaction can begin IMMEDIATE
            dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    event.listen(engine.sync_engine, "connect", _connect)
    if begin_immediate:
        event.listen(engine.sync_engine, "begin", _begin_immediate)


def _begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def as_utc(moment: datetime) -> datetime:
    """A naive datetime taken as UTC (an event's time without an offset); UtcMicros columns
    already read back aware."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
