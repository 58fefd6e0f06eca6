"""Calls stored by day: pages across midnight and a dropped day, a call once, far-off dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from contracts.calllog import CallStatsQuery
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
