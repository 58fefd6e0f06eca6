"""Day partitions on PostgreSQL made and dropped while calls are written: nobody waits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.calllog import partitions
from services.calllog.domain import to_us
from services.calllog.store import create_schema
from services.common.sql import make_engine
from tests.drivers.calllog_days import WEEK, pages, partition_names, rows, stored
from tests.fakes.calllog import a_call
from tests.random_refs import new_account

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url)
    await create_schema(engine)
    yield engine
    await engine.dispose()


async def _detach_pending(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        found = await conn.exec_driver_sql(
            "SELECT count(*) FROM pg_inherits WHERE inhdetachpending"
        )
        return bool(found.scalar())


async def test_dropping_a_day_blocks_no_writer_and_no_reader(engine: AsyncEngine) -> None:
    """A transaction that began before the detach keeps it waiting; meanwhile new inserts
    and queries go through, and the parent is never locked beyond SHARE UPDATE EXCLUSIVE."""
    now = datetime.now(UTC)
    account = new_account()
    await stored(engine, a_call(account, now - timedelta(days=10)))  # an expired day
    async with engine.connect() as older:
        await older.begin()  # an ingest batch in flight when retention starts
        await older.exec_driver_sql(
            "INSERT INTO calllog_calls VALUES ('held', 'a', 'k', "
            f"{int(now.timestamp()) * 1_000_000}, 'GET', '/', 200, 1, NULL, NULL, 1)"
        )
        dropping = asyncio.create_task(partitions.drop_expired(engine, now, WEEK))
        while not await _detach_pending(engine):
            assert not dropping.done(), dropping
            await asyncio.sleep(0.01)
        fresh = [a_call(account, now - timedelta(minutes=m)) for m in range(50)]
        assert await stored(engine, *fresh) == 50  # did not wait for the detach
        assert len(await pages(engine, account, now, limit=100)) == 50
        async with engine.connect() as conn:
            modes = await conn.exec_driver_sql(
                "SELECT DISTINCT mode FROM pg_locks WHERE relation = 'calllog_calls'::regclass"
            )
            held = {str(mode) for (mode,) in modes.all()}
        assert held <= {"RowExclusiveLock", "ShareUpdateExclusiveLock", "AccessShareLock"}
        assert not dropping.done()  # still waiting for `older`, which is not blocked
        await older.commit()
    dropped = await dropping
    assert len(dropped) == 1
    assert len(await rows(engine)) == 51


async def test_a_day_dropped_by_another_replica_fails_one_batch_then_is_made_again(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bounds are cached for a few seconds: a partition another replica's retention
    dropped meanwhile fails the batch (redelivered by the projector, nothing half-stored),
    and once the bounds are read again the day is made anew."""
    now = datetime.now(UTC)
    account = new_account()
    late = now - timedelta(days=5)
    await stored(engine, a_call(account, now))  # the bounds are cached now
    name = f"calls_{late:%Y%m%d}"
    async with engine.begin() as conn:  # what another replica's retention would do
        await conn.exec_driver_sql(
            f"ALTER TABLE calllog_calls DETACH PARTITION calllog_days.{name}"
        )
        await conn.exec_driver_sql(f"DROP TABLE calllog_days.{name}")
    call = a_call(account, late)
    with pytest.raises(IntegrityError, match="no partition"):
        await stored(engine, call)
    assert len(await rows(engine)) == 1
    monkeypatch.setattr(partitions, "FRESH_SECONDS", 0.0)  # as if a few seconds went by
    assert await stored(engine, call) == 1
    assert name in await partition_names(engine)


async def test_making_a_day_blocks_no_writer(engine: AsyncEngine) -> None:
    """A batch that makes a partition holds SHARE UPDATE EXCLUSIVE (and ACCESS SHARE) on the
    parent until it commits; another batch inserting meanwhile does not wait for it."""
    now = datetime.now(UTC)
    account = new_account()
    async with engine.connect() as making:
        await making.begin()
        await partitions.cover(making, [{"ts_us": to_us(now + timedelta(days=20))}])
        pid = (await making.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
        assert await stored(engine, a_call(account, now)) == 1  # did not wait
        async with engine.connect() as conn:
            modes = await conn.exec_driver_sql(
                "SELECT mode FROM pg_locks "
                f"WHERE relation = 'calllog_calls'::regclass AND pid = {pid}"
            )
            # ATTACH's, and LIKE's for reading the parent's columns
            held = {str(mode) for (mode,) in modes.all()}
            assert held == {"ShareUpdateExclusiveLock", "AccessShareLock"}
        await making.commit()
    assert f"calls_{now + timedelta(days=20):%Y%m%d}" in await partition_names(engine)


async def test_a_detach_left_pending_is_finished_by_the_next_run(engine: AsyncEngine) -> None:
    """A retention run that died between the two steps of DETACH ... CONCURRENTLY."""
    now = datetime.now(UTC)
    account = new_account()
    await stored(engine, a_call(account, now - timedelta(days=12)))
    await stored(engine, a_call(account, now - timedelta(days=10)))
    name = f"calls_{now - timedelta(days=12):%Y%m%d}"
    async with engine.connect() as older, engine.connect() as conn:
        await older.begin()
        await older.exec_driver_sql("SELECT count(*) FROM calllog_calls")  # holds the parent
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("SET lock_timeout = '200ms'")
        with pytest.raises(DBAPIError, match="lock timeout"):  # its second step gives up
            await conn.exec_driver_sql(
                f"ALTER TABLE calllog_calls DETACH PARTITION calllog_days.{name} CONCURRENTLY"
            )
        await older.rollback()
    assert await _detach_pending(engine)
    dropped = await partitions.drop_expired(engine, now, WEEK)
    assert sorted(dropped) == sorted([name, f"calls_{now - timedelta(days=10):%Y%m%d}"])
    assert await rows(engine) == []
