"""keys and notifier 0003: stored DateTime values become UtcMicros, the very same instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Column, Connection, MetaData, Table, inspect, select

from services.common.micros import to_micros
from services.common.migrate import current_revision, head_revision, upgrade_to_head
from services.common.sql import UtcMicros, as_utc, make_engine
from tests.drivers.schema import (
    METADATA,
    SPECS,
    autogenerate_diff,
    before_micros,
    database_shape,
    metadata_shape,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncEngine

BEFORE = "0002"  # the last revision that stored DateTime(timezone=True)
with_times = pytest.mark.parametrize("service", ["keys", "notifier"])
MOMENTS = [
    datetime(2026, 3, 4, 5, 6, 7, 123_456, tzinfo=UTC),
    datetime(2026, 3, 4, 10, 36, 7, 654_321, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),  # before the epoch: negative
    datetime(2026, 1, 1, tzinfo=UTC),  # no fraction
    datetime(2300, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC),  # past what a float holds exactly
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
]
Rows = dict[str, list[dict[str, Any]]]


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url)
    yield engine
    await engine.dispose()


def alembic(conn: Connection, service: str, upgrade: bool, revision: str) -> None:
    """Alembic itself to a given revision (upgrade_to_head only knows the head)."""
    config = Config()
    config.set_main_option("script_location", str(SPECS[service].folder))
    config.attributes["connection"] = conn
    config.attributes["version_table"] = SPECS[service].version_table
    (command.upgrade if upgrade else command.downgrade)(config, revision)


def time_columns(service: str) -> dict[str, list[str]]:
    """Every UtcMicros column of the service, by table."""
    found = {
        table.name: [c.name for c in table.columns if isinstance(c.type, UtcMicros)]
        for table in METADATA[service].tables.values()
    }
    return {table: names for table, names in found.items() if names}


def filler(column: Column[Any], i: int) -> Any:
    """A value for a column that is not a time: distinct per row, within the column's width."""
    kind = column.type.python_type
    if kind is bool:
        return True
    if kind is int:
        return i
    length = getattr(column.type, "length", None) or 64
    return f"{i}-{column.name}"[:length]


def rows_of(table: Table, times: list[str]) -> list[dict[str, Any]]:
    """A row per moment, each time column a different one; and a row of NULL times."""
    rows = []
    for i in range(len(MOMENTS) + 1):
        row = {c.name: filler(c, i) for c in table.columns if c.name not in times}
        for j, name in enumerate(times):
            nullable = table.c[name].nullable
            last = i == len(MOMENTS)
            row[name] = None if last and nullable else MOMENTS[(i + j) % len(MOMENTS)]
        rows.append(row)
    return rows


async def at_revision(engine: AsyncEngine, service: str, upgrade: bool, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(alembic, service, upgrade, revision)


async def tables_before(engine: AsyncEngine, service: str) -> set[str]:
    """The tables at the revision before 0003 (a later revision's, such as the keys
    registry snapshot's, were born UtcMicros). Leaves the database at that revision."""
    await at_revision(engine, service, True, BEFORE)
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


def converted(service: str, tables: set[str]) -> dict[str, list[str]]:
    """The time columns 0003 converted."""
    return {name: c for name, c in time_columns(service).items() if name in tables}


def only(metadata: MetaData, tables: set[str]) -> MetaData:
    """`metadata` without the tables a later revision made."""
    for table in [t for name, t in metadata.tables.items() if name not in tables]:
        metadata.remove(table)
    return metadata


async def read(engine: AsyncEngine, metadata: MetaData, tables: list[str]) -> Rows:
    async with engine.connect() as conn:
        return {
            name: [
                dict(r)
                for r in (await conn.execute(select(metadata.tables[name]).order_by(*pk)))
                .mappings()
                .all()
            ]
            for name in tables
            for pk in [metadata.tables[name].primary_key.columns]
        }


def utc(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SQLite's DateTime reads back naive (UTC); compare instants."""
    return [
        {k: as_utc(v) if isinstance(v, datetime) else v for k, v in row.items()} for row in rows
    ]


@with_times
async def test_times_stored_at_the_previous_revision_upgrade_to_the_same_instants(
    engine: AsyncEngine, service: str
) -> None:
    tables = await tables_before(engine, service)
    old, times = only(before_micros(METADATA[service]), tables), converted(service, tables)
    written = {name: rows_of(old.tables[name], columns) for name, columns in times.items()}
    sqlite = engine.dialect.name == "sqlite"
    async with engine.begin() as conn:
        for name, rows in written.items():
            # the services bound UTC; SQLite kept its wall time as text without an offset
            utc_rows = [
                {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in r.items()}
                for r in rows
            ]
            await conn.execute(old.tables[name].insert(), utc_rows if sqlite else rows)
        if sqlite:
            name, columns = next(iter(times.items()))
            raw = await conn.exec_driver_sql(f"SELECT {columns[0]} FROM {name}")
            assert "2026-03-04 05:06:07.123456" in raw.scalars().all()

    done = await upgrade_to_head(engine, SPECS[service])
    assert (done.before, done.after) == (BEFORE, head_revision(SPECS[service]))
    now = await read(engine, METADATA[service], list(times))
    for name, rows in written.items():
        # aware datetimes compare as instants: equal means the same microsecond
        assert now[name] == rows
        for row in now[name]:
            assert all(row[c] is None or row[c].tzinfo is UTC for c in times[name])
    async with engine.connect() as conn:
        for name, columns in times.items():
            raw = (await conn.exec_driver_sql(f"SELECT {columns[0]} FROM {name}")).scalars()
            expected = [r[columns[0]] for r in written[name]]
            assert sorted(raw.all(), key=str) == sorted(
                (to_micros(m) if m is not None else None for m in expected), key=str
            )
        # the indexes on those columns survived; nothing differs from store.py, types included
        assert await conn.run_sync(database_shape) == metadata_shape(METADATA[service])
        assert await conn.run_sync(autogenerate_diff, METADATA[service]) == []


@with_times
async def test_downgrading_from_micros_gives_the_same_instants_back(
    engine: AsyncEngine, service: str
) -> None:
    tables = await tables_before(engine, service)
    times = converted(service, tables)
    await upgrade_to_head(engine, SPECS[service])
    written = {name: rows_of(METADATA[service].tables[name], c) for name, c in times.items()}
    async with engine.begin() as conn:
        for name, rows in written.items():
            await conn.execute(METADATA[service].tables[name].insert(), rows)

    await at_revision(engine, service, False, BEFORE)
    assert await current_revision(engine, SPECS[service]) == BEFORE
    old = only(before_micros(METADATA[service]), tables)
    back = await read(engine, old, list(times))
    for name, rows in written.items():
        assert utc(back[name]) == rows
    async with engine.connect() as conn:
        assert await conn.run_sync(database_shape) == metadata_shape(old)
        assert await conn.run_sync(autogenerate_diff, old) == []
    # and up again: still the same instants
    await upgrade_to_head(engine, SPECS[service])
    await engine.dispose()  # asyncpg's cached plans of the same SELECT saw other column types
    assert await read(engine, METADATA[service], list(times)) == written
