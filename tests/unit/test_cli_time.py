"""The CLI's one grammar of durations and moments, and the limits each option applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.calendar import add_months
from keyledger.cli.times import parse_as_of, parse_duration, parse_grace, parse_since

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), ("2w", 1209600), (" 1d ", 86400)],
)
def test_a_duration_is_a_number_and_a_fixed_unit(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["3x", "15", "-1m", "1.5h", "", "5mo", "1y", "3 weeks", "d"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_the_grace_cap_belongs_to_grace_only() -> None:
    assert parse_grace("30d") == 30 * 86400
    assert parse_grace("4w") == 28 * 86400
    for longer in ("31d", "5w", "721h"):
        with pytest.raises(ValueError, match="30d maximum"):
            parse_grace(longer)
    assert parse_duration("31d") == 31 * 86400
    assert parse_since("31d", NOW) == NOW - timedelta(days=31)


def test_since_is_a_duration_ago_or_an_iso_time() -> None:
    assert parse_since("24h", NOW) == NOW - timedelta(hours=24)
    assert parse_since("2w", NOW) == NOW - timedelta(weeks=2)
    assert parse_since("2026-01-30", NOW) == datetime(2026, 1, 30, tzinfo=UTC)
    assert parse_since("2026-01-30T10:00:00Z", NOW) == datetime(2026, 1, 30, 10, tzinfo=UTC)
    for bad in ("yesterday", "5mo", "+1d"):
        with pytest.raises(ValueError, match="use a duration"):
            parse_since(bad, NOW)
    for beyond in ("99999999999d", "20000w", "9999-12-31", "0001-01-01T00:00:00+05:00"):
        with pytest.raises(ValueError, match="must lie between"):
            parse_since(beyond, NOW)


def test_as_of_offsets_use_calendar_months() -> None:
    assert parse_as_of("+5mo", NOW) == add_months(NOW, 5) == datetime(2026, 6, 30, 12, tzinfo=UTC)
    assert parse_as_of("+1y", NOW) == add_months(NOW, 12)
    assert parse_as_of("+2w", NOW) == NOW + timedelta(weeks=2)
    assert parse_as_of(" now ", NOW) == NOW
    assert parse_as_of(None, NOW) is None
    for bad in ("+5m", "+3h", "+30s", "5d", "+ 5d", "-5mo", "+5"):
        with pytest.raises(ValueError, match="not a date"):
            parse_as_of(bad, NOW)
