"""The day-partition rules: which range a new partition covers, its name, its bound."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.calllog import days
from services.calllog.domain import to_us

TODAY = days.day_of(to_us(datetime(2026, 11, 30, 12, tzinfo=UTC)))
YEAR_9000 = days.day_of(to_us(datetime(8999, 12, 31, 23, tzinfo=UTC)))


def test_a_day_near_today_gets_a_partition_of_its_own() -> None:
    for day in (TODAY - 8, TODAY, TODAY + 3, TODAY + days.NEAR_DAYS):
        assert days.span_for(day, TODAY, []) == (day, day + 1)


@pytest.mark.parametrize("distance", [32, 40, 100, 1000, -40, -20_000])
def test_a_far_day_gets_an_aligned_block_of_a_quarter_to_half_its_distance(distance: int) -> None:
    day = TODAY + distance
    lo, hi = days.span_for(day, TODAY, [])
    assert lo <= day < hi
    assert abs(distance) / 4 < hi - lo <= abs(distance) / 2
    assert lo % (hi - lo) == 0
    assert not lo <= TODAY < hi


def test_a_block_is_clipped_to_the_gap_between_partitions() -> None:
    day = TODAY + 100  # a 32-day block from its aligned start
    lo, hi = days.span_for(day, TODAY, [])
    taken = [(lo, day - 1), (day + 1, hi + 5)]
    assert days.span_for(day, TODAY, taken) == (day - 1, day + 1)


def test_calls_dated_anywhere_make_few_partitions() -> None:
    """A producer dating a call on every 7th day up to year 9000 (the contract's limit)."""
    taken: list[days.Span] = []
    for day in range(0, YEAR_9000, 7):
        if not days.covered(day, taken):
            span = days.span_for(day, TODAY, taken)
            assert not any(lo < span[1] and span[0] < hi for lo, hi in taken)  # no overlap
            taken.append(span)
    assert len(taken) < 200  # against 370,000 one-day partitions
    assert days.uncovered(range(0, YEAR_9000, 7), taken) == []


def test_names_are_the_first_day_and_the_length_of_a_block() -> None:
    assert days.name_for((TODAY, TODAY + 1)) == "calls_20261130"
    assert days.name_for((TODAY + 2, TODAY + 18)) == "calls_20261202_16d"


def test_bounds_read_back_from_the_catalog_text() -> None:
    lo, hi = TODAY * days.DAY_US, (TODAY + 1) * days.DAY_US
    assert days.bound_us(f"FOR VALUES FROM ('{lo}') TO ('{hi}')") == (lo, hi)
    assert days.day_span(lo, hi) == (TODAY, TODAY + 1)
    with pytest.raises(ValueError, match="not a range partition bound"):
        days.bound_us("DEFAULT")


def test_the_sql_attaches_a_standalone_table() -> None:
    create, attach = days.create_sql((TODAY, TODAY + 1))
    assert create.startswith("CREATE TABLE calllog_days.calls_20261130 (LIKE calllog_calls")
    assert attach == (
        "ALTER TABLE calllog_calls ATTACH PARTITION calllog_days.calls_20261130 "
        f"FOR VALUES FROM ({TODAY * days.DAY_US}) TO ({(TODAY + 1) * days.DAY_US})"
    )
