"""Calls stored by day: pages across midnight and a dropped day, far-off dates, no writer waits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.exc import IntegrityError

from contracts.calllog import CallStatsQuery
from services.calllog import partitions
from services.calllog.domain import to_us
from services.calllog.queries.usage import call_stats
from services.calllog.retention import expire
from services.calllog.store import create_schema
from services.common.sql import make_engine
from tests.drivers.calllog_days import (
    WEEK,
    newest_first,
    pages,
    partition_names,
    pg_only,
    rows,
    stored,
)
from tests.fakes.calllog import a_call
from tests.random_refs import new_account

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncEngine

NOW = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)  # the window starts at 00:30 on the 23rd
LATER = NOW + timedelta(days=1, hours=1)  # ... and then at 01:30 on the 24th
US = timedelta(microseconds=1)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url)
    await create_schema(engine)
    yield engine
    await engine.dispose()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


async def test_pages_cross_midnight_and_a_dropped_day_alike(engine: AsyncEngine) -> None:
    account = new_account()
    midnight = at(30, 0)
    records = [
        a_call(account, at(22, 23)),  # a wholly expired day
        a_call(account, at(23, 0, 15)),  # expired, on the day the window starts in
        a_call(account, at(23, 1)),
        a_call(account, at(23, 23, 59)),
        a_call(account, at(24, 12)),
        a_call(account, midnight - US),
        *(a_call(account, midnight) for _ in range(3)),  # a tie, ordered by call id
        a_call(account, at(30, 0, 20)),
        a_call(account, at(30, 1)),  # not yet: shown from 01:00
    ]
    assert await stored(engine, *records) == len(records)
    await expire(engine, NOW, WEEK)
    assert await pages(engine, account, NOW) == newest_first(records, NOW - timedelta(7), NOW)
    if engine.dialect.name == "postgresql":
        assert "calls_20261122" not in await partition_names(engine)

    # a page taken before the next run, the rest after it: the cursor still holds
    expected = newest_first(records, LATER - timedelta(7), LATER)
    first = await pages(engine, account, LATER, limit=len(expected) - 3)
    assert first == expected  # one page; and in pages of 2 from its cursor, below
    head = await pages(engine, account, LATER, limit=2)
    await expire(engine, LATER, WEEK)
    if engine.dialect.name == "postgresql":
        names = await partition_names(engine)
        assert "calls_20261123" not in names
        assert "calls_20261124" in names  # the day the window starts in stays, in part
    assert await pages(engine, account, LATER) == head == expected
    stats = await call_stats(engine, CallStatsQuery(account_id=account), LATER, WEEK)
    assert stats.total == len(expected)

    # a late call for a day already dropped is stored (never refused), not shown, and goes
    late = a_call(account, at(22, 12))
    assert await stored(engine, late) == 1
    assert await pages(engine, account, LATER) == expected
    await expire(engine, LATER, WEEK)
    assert late.call_id not in {row[0] for row in await rows(engine)}


async def test_a_call_id_sent_again_with_its_time_is_stored_once(engine: AsyncEngine) -> None:
    account = new_account()
    call = a_call(account, NOW - timedelta(hours=1))
    await stored(engine, call)
    await stored(engine, call, a_call(account, NOW))  # a gateway's retry, in a later batch
    assert [row[0] for row in await rows(engine)].count(call.call_id) == 1


@pg_only
async def test_calls_dated_far_off_are_kept_in_few_partitions(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    account = new_account()
    odd = [
        datetime(1971, 1, 1, tzinfo=UTC),
        datetime(2030, 6, 1, tzinfo=UTC),
        datetime(8999, 12, 31, 23, 59, tzinfo=UTC),
        now + timedelta(days=45),
        now,
    ]
    records = [a_call(account, ts) for ts in odd]
    before = set(await partition_names(engine))
    await stored(engine, *records)
    await stored(engine, *records)  # redelivered in full: every row once
    assert sorted(row[0] for row in await rows(engine)) == sorted(r.call_id for r in records)
    made = set(await partition_names(engine)) - before
    assert len(made) == 4  # a block of days each; today's was made at start
    await expire(engine, now, WEEK)  # the 1971 block has expired
    assert len(await rows(engine)) == len(records) - 1


async def _detach_pending(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        found = await conn.exec_driver_sql(
            "SELECT count(*) FROM pg_inherits WHERE inhdetachpending"
        )
        return bool(found.scalar())


@pg_only
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


@pg_only
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


@pg_only
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
