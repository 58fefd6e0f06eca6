"""UtcMicros: times stored as integer microseconds since the epoch, exact, on real SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import StatementError

from services.common.micros import from_micros, to_micros
from services.common.sql import UtcMicros
from tests.fakes.memory import memory_engine

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncEngine

PLUS_0530 = timezone(timedelta(hours=5, minutes=30))
MINUS_0800 = timezone(timedelta(hours=-8))
MOMENTS = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 3, 4, 5, 6, 7, 123_456, tzinfo=UTC),
    datetime(2026, 3, 4, 10, 36, 7, 123_457, tzinfo=PLUS_0530),
    # past 2**53 microseconds, where a float would no longer hold every microsecond
    datetime(2300, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC),
    datetime(9999, 12, 31, 15, 59, 59, 999_999, tzinfo=MINUS_0800),
]

metadata = MetaData()
times = Table(
    "times",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcMicros, nullable=True),
)


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = await memory_engine(metadata)
    yield engine
    await engine.dispose()


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_moment_goes_to_micros_and_back_exactly(moment: datetime) -> None:
    back = from_micros(to_micros(moment))
    assert back == moment
    assert back.tzinfo is UTC
    assert back.utcoffset() == timedelta(0)


def test_micros_count_from_the_epoch_in_utc() -> None:
    assert to_micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert to_micros(datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=UTC)) == 1_000_001
    assert to_micros(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1
    assert to_micros(datetime(1970, 1, 1, 5, 30, tzinfo=PLUS_0530)) == 0


def test_an_offset_lands_on_the_same_instant_as_its_utc_time() -> None:
    utc = datetime(2026, 3, 4, 5, 6, 7, 123_456, tzinfo=UTC)
    assert to_micros(utc.astimezone(PLUS_0530)) == to_micros(utc)
    assert to_micros(utc.astimezone(MINUS_0800)) == to_micros(utc)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_micros(datetime(2026, 3, 4, 5, 6, 7))


def test_the_column_is_a_bigint_on_both_databases() -> None:
    assert str(UtcMicros().compile(dialect=sqlite.dialect())) == "BIGINT"
    assert str(UtcMicros().compile(dialect=postgresql.dialect())) == "BIGINT"


def test_the_type_converts_binds_and_results_without_a_database() -> None:
    kind = UtcMicros()
    moment = datetime(2026, 3, 4, 10, 36, 7, 123_456, tzinfo=PLUS_0530)
    stored = kind.process_bind_param(moment, sqlite.dialect())
    assert stored == to_micros(moment)
    assert isinstance(stored, int)
    assert kind.process_result_value(stored, sqlite.dialect()) == moment
    assert kind.process_bind_param(None, sqlite.dialect()) is None
    assert kind.process_result_value(None, sqlite.dialect()) is None


async def test_sqlite_keeps_every_moment_to_the_microsecond(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(times.insert(), [{"id": i, "at": m} for i, m in enumerate(MOMENTS)])
    async with engine.connect() as conn:
        read = (await conn.execute(select(times.c.at).order_by(times.c.id))).scalars().all()
        raw = (await conn.exec_driver_sql("SELECT at FROM times ORDER BY id")).scalars().all()
    assert read == MOMENTS
    assert all(m is not None and m.tzinfo is UTC for m in read)
    assert raw == [to_micros(m) for m in MOMENTS]
    assert all(type(value) is int for value in raw)


async def test_sqlite_passes_null_through(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(times.insert(), {"id": 1, "at": None})
    async with engine.connect() as conn:
        assert await conn.scalar(select(times.c.at)) is None
        assert await conn.scalar(select(times.c.id).where(times.c.at.is_(None))) == 1


async def test_sqlite_refuses_a_naive_datetime_and_stores_nothing(engine: AsyncEngine) -> None:
    with pytest.raises(StatementError) as refused:
        async with engine.begin() as conn:
            await conn.execute(times.insert(), {"id": 1, "at": datetime(2026, 3, 4)})
    assert isinstance(refused.value.orig, ValueError)
    async with engine.connect() as conn:
        assert (await conn.execute(select(times))).all() == []


async def test_stored_ints_order_as_the_instants_do(engine: AsyncEngine) -> None:
    shuffled = [MOMENTS[i] for i in (4, 0, 7, 2, 6, 1, 5, 3)]
    async with engine.begin() as conn:
        await conn.execute(times.insert(), [{"id": i, "at": m} for i, m in enumerate(shuffled)])
    async with engine.connect() as conn:
        by_value = (await conn.execute(select(times.c.at).order_by(times.c.at))).scalars().all()
    assert by_value == sorted(MOMENTS)


async def test_a_bound_moment_with_an_offset_compares_as_its_instant(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(times.insert(), [{"id": i, "at": m} for i, m in enumerate(MOMENTS)])
    since = datetime(2026, 3, 4, 10, 36, 7, 123_456, tzinfo=PLUS_0530)  # 05:06:07.123456 UTC
    async with engine.connect() as conn:
        later = (
            (await conn.execute(select(times.c.at).where(times.c.at >= since).order_by(times.c.at)))
            .scalars()
            .all()
        )
    assert later == [m for m in sorted(MOMENTS) if m >= since]
    assert len(later) == 4  # 05:06:07.123456 itself, .123457, 2300 and 9999
