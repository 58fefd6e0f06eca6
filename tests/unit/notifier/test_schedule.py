"""The pure reminder schedule: milestones, month ends, leap years, late starts, resets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.calendar import add_months
from services.notifier.domain import (
    Step,
    channels_at,
    due_at,
    latest_due,
    months_in_use,
    next_milestone,
    step,
    upcoming,
)

SECOND = timedelta(seconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("months", "channels"),
    [
        (0, ()),
        (4, ()),
        (5, ("email",)),
        (6, ("sidebar",)),
        (7, ()),
        (11, ()),
        (12, ("email", "sidebar")),
        (13, ()),
        (18, ("email", "sidebar")),
        (24, ("email", "sidebar")),
        (60, ("email", "sidebar")),
    ],
)
def test_each_milestone_has_its_channels(months: int, channels: tuple[str, ...]) -> None:
    assert channels_at(months) == channels


@pytest.mark.parametrize(
    ("after", "following"),
    [(0, 5), (4, 5), (5, 6), (6, 12), (11, 12), (12, 18), (17, 18), (18, 24), (30, 36)],
)
def test_the_next_milestone_follows_in_order(after: int, following: int) -> None:
    assert next_milestone(after) == following


# (key in use since, now) -> the latest milestone reached, or None
CASES = [
    # days before, at and after each milestone
    ("15 Jan, a second before 5 months", utc(2025, 1, 15, 10), utc(2025, 6, 15, 10) - SECOND, None),
    ("15 Jan, exactly 5 months", utc(2025, 1, 15, 10), utc(2025, 6, 15, 10), 5),
    ("15 Jan, a day after 5 months", utc(2025, 1, 15, 10), utc(2025, 6, 16, 10), 5),
    ("15 Jan, a day before 6 months", utc(2025, 1, 15, 10), utc(2025, 7, 14, 10), 5),
    ("15 Jan, exactly 6 months", utc(2025, 1, 15, 10), utc(2025, 7, 15, 10), 6),
    ("15 Jan, 11 months", utc(2025, 1, 15, 10), utc(2025, 12, 31, 23), 6),
    ("15 Jan, a second before 12 months", utc(2025, 1, 15, 10), utc(2026, 1, 15, 10) - SECOND, 6),
    ("15 Jan, exactly 12 months", utc(2025, 1, 15, 10), utc(2026, 1, 15, 10), 12),
    ("15 Jan, 17 months", utc(2025, 1, 15, 10), utc(2026, 7, 1), 12),
    ("15 Jan, 18 months", utc(2025, 1, 15, 10), utc(2026, 7, 15, 10), 18),
    ("15 Jan, 24 months", utc(2025, 1, 15, 10), utc(2027, 1, 15, 10), 24),
    ("15 Jan, 10 years", utc(2025, 1, 15, 10), utc(2035, 1, 15, 10), 120),
    # month ends clamp: 31 Mar + 5 = 31 Aug; 31 Jan + 5 = 30 Jun (MISSION's example)
    ("31 Mar, 30 Aug", utc(2025, 3, 31), utc(2025, 8, 30, 23, 59), None),
    ("31 Mar, 31 Aug", utc(2025, 3, 31), utc(2025, 8, 31), 5),
    ("31 Jan, 29 Jun", utc(2025, 1, 31), utc(2025, 6, 29, 23, 59), None),
    ("31 Jan, 30 Jun", utc(2025, 1, 31), utc(2025, 6, 30), 5),
    ("31 Aug + 6 = 28 Feb", utc(2025, 8, 31), utc(2026, 2, 28), 6),
    ("31 Aug, 27 Feb", utc(2025, 8, 31), utc(2026, 2, 27, 23), 5),
    # leap years: 30 Sep + 5 lands on 28 Feb, or on 29 Feb in a leap year
    ("30 Sep 2025, 27 Feb 2026", utc(2025, 9, 30), utc(2026, 2, 27, 23), None),
    ("30 Sep 2025, 28 Feb 2026", utc(2025, 9, 30), utc(2026, 2, 28), 5),
    ("30 Sep 2023, 28 Feb 2024", utc(2023, 9, 30), utc(2024, 2, 28, 23), None),
    ("30 Sep 2023, 29 Feb 2024", utc(2023, 9, 30), utc(2024, 2, 29), 5),
    ("29 Feb 2024 + 12 = 28 Feb 2025", utc(2024, 2, 29), utc(2025, 2, 28), 12),
    ("29 Feb 2024, 27 Feb 2025", utc(2024, 2, 29), utc(2025, 2, 27), 6),
    ("29 Feb 2024 + 48 = 29 Feb 2028", utc(2024, 2, 29), utc(2028, 2, 29), 48),
    # across a year end, and before the key existed
    ("1 Aug, 1 Jan", utc(2025, 8, 1), utc(2026, 1, 1), 5),
    ("before the key", utc(2025, 8, 1), utc(2025, 1, 1), None),
]


@pytest.mark.parametrize(
    ("since", "now", "milestone"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_latest_milestone_reached(since: datetime, now: datetime, milestone: int | None) -> None:
    assert latest_due(since, now) == milestone


def brute_latest(since: datetime, now: datetime) -> int | None:
    found, months = None, 5
    while add_months(since, months) <= now:
        found, months = months, next_milestone(months)
    return found


def test_every_day_of_four_years_at_every_milestone_edge() -> None:
    """Exhaustive: each start day 2023-2026 (a leap year included), a second either side."""
    start = utc(2023, 1, 1, 13, 30)
    for day in range(4 * 366):
        since = start + timedelta(days=day)
        for months in (5, 6, 12, 18, 24):
            edge = add_months(since, months)
            for now in (edge - SECOND, edge, edge + SECOND):
                assert latest_due(since, now) == brute_latest(since, now), (since, now)
            assert months_in_use(since, edge) == months


def test_a_due_key_sends_its_milestone_and_moves_to_the_next() -> None:
    since = utc(2025, 1, 15)
    assert step(since, 5, utc(2025, 6, 14)) is None
    assert step(since, 5, utc(2025, 6, 15)) == Step(5, ("email",), 6, utc(2025, 7, 15))
    assert step(since, 6, utc(2025, 7, 20)) == Step(6, ("sidebar",), 12, utc(2026, 1, 15))
    assert step(since, 12, utc(2026, 1, 15)) == Step(12, ("email", "sidebar"), 18, utc(2026, 7, 15))


def test_a_late_start_sends_only_the_latest_milestone_not_a_burst() -> None:
    since = utc(2025, 1, 15)
    late = step(since, 5, utc(2026, 2, 20))  # first seen at 13 months
    assert late == Step(12, ("email", "sidebar"), 18, utc(2026, 7, 15))
    assert step(since, 5, utc(2025, 8, 1)) == Step(6, ("sidebar",), 12, utc(2026, 1, 15))


def test_a_handled_milestone_is_not_due_again() -> None:
    since = utc(2025, 1, 15)
    assert step(since, 6, utc(2025, 6, 30)) is None  # 5 was sent; 6 not yet
    assert step(since, 18, utc(2026, 3, 1)) is None  # 12 was sent


def test_due_dates_are_calendar_months_in_utc() -> None:
    assert due_at(utc(2025, 3, 31, 23, 59), 5) == utc(2025, 8, 31, 23, 59)
    assert due_at(utc(2025, 8, 31), 6) == utc(2026, 2, 28)


def test_upcoming_lists_what_the_next_sweeps_send() -> None:
    since = utc(2025, 1, 15)
    assert upcoming(since, 5, utc(2025, 2, 1)) == [
        (5, utc(2025, 6, 15)),
        (6, utc(2025, 7, 15)),
        (12, utc(2026, 1, 15)),
    ]
    # overdue and not swept yet: the next sweep sends the latest milestone only
    assert [m for m, _ in upcoming(since, 5, utc(2026, 2, 1))] == [12, 18, 24]
    assert [m for m, _ in upcoming(since, 18, utc(2026, 2, 1), count=2)] == [18, 24]
