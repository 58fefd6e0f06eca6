"""Migration 0002 on a PostgreSQL call log holding rows: partitioned and back, no row lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from services.calllog.days import day_of, name_for
from services.calllog.domain import call_row, to_us
from services.calllog.migrations import MIGRATIONS
from services.calllog.store import calls, metadata
from services.common.migrate import current_revision, upgrade_to_head
from services.common.sql import make_engine
from tests.drivers.calllog_days import pages, partition_names, pg_only, rows, stored
from tests.fakes.calllog import a_call
from tests.random_refs import new_account

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine


def _downgrade(conn: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS.folder))
    config.attributes["connection"] = conn
    config.attributes["version_table"] = MIGRATIONS.version_table
    command.downgrade(config, revision)


async def relkind(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        found = await conn.exec_driver_sql(
            "SELECT relkind::text FROM pg_class WHERE oid = 'calllog_calls'::regclass"
        )
        return str(found.scalar())


async def primary_key(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_pk_constraint("calllog_calls"))
        return list(found["constrained_columns"])


@pg_only
async def test_a_full_table_is_partitioned_in_place_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await _round_trip(engine)
    finally:
        await engine.dispose()


async def _round_trip(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    account = new_account()
    # the tables as 0001 (or create_all before Alembic) left them, with a week of calls
    dated = [now - timedelta(days=d, minutes=d) for d in range(8)]
    dated += [now + timedelta(days=400), datetime(1971, 1, 1, tzinfo=UTC)]
    records = [a_call(account, ts) for ts in dated for _ in range(3)]
    old: list[dict[str, Any]] = [
        call_row(i, f"calls.recorded.{account}", r.model_dump(mode="json"))
        for i, r in enumerate(records, 1)
    ]
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(calls.insert(), old)
    before = await rows(engine)
    assert len(before) == len(records)

    done = await upgrade_to_head(engine, MIGRATIONS)
    assert (done.before, done.after) == (None, "0002")
    assert await relkind(engine) == "p"
    assert await primary_key(engine) == ["call_id", "ts_us"]
    assert await rows(engine) == before
    # the old table is the partition of its days, up to today; the far row got its own
    names = await partition_names(engine)
    today = day_of(to_us(now))
    assert name_for((day_of(to_us(dated[-1])), today + 1)) in names
    assert len(names) == 2
    # and the service goes on: new rows today and tomorrow, the same pages as before
    shown = await pages(engine, account, now)
    assert len(shown) == 3 * 7
    later = [a_call(account, now + timedelta(days=1))]
    assert await stored(engine, *later) == 1
    after = await rows(engine)
    assert len(after) == len(records) + 1

    async with engine.begin() as conn:
        await conn.run_sync(_downgrade, "0001")
    assert await current_revision(engine, MIGRATIONS) == "0001"
    assert await relkind(engine) == "r"
    assert await primary_key(engine) == ["call_id"]
    assert await rows(engine) == after
    assert await pages(engine, account, now) == shown
    async with engine.connect() as conn:
        schemas = await conn.exec_driver_sql(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'calllog_days'"
        )
        assert schemas.scalar() == 0

    await upgrade_to_head(engine, MIGRATIONS)  # and up again, on the same rows
    assert await relkind(engine) == "p"
    assert await rows(engine) == after
    assert await pages(engine, account, now + timedelta(days=1), limit=5)  # tomorrow's shows


@pg_only
async def test_an_empty_table_is_replaced_by_an_empty_parent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        assert await relkind(engine) == "p"
        assert await partition_names(engine) == []  # made by the service at start
        assert await pages(engine, new_account(), datetime.now(UTC)) == []
    finally:
        await engine.dispose()
