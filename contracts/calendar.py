"""Calendar-month arithmetic in UTC, and the span of time every contract accepts."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# exclusive; far from datetime's year 9999, so a few years of month arithmetic past any
# accepted moment (upcoming reminders, due dates) can never overflow
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
SPAN = "must lie between 1970-01-01 and 8999-12-31 (UTC)"
# one rule for the key reply and the reminder email, so both name the same date
ROTATION_ADVICE_MONTHS = 6


def add_months(moment: datetime, months: int) -> datetime:
    """Add calendar months, clamping to the month's last day (31 Aug + 6 months = 28/29 Feb)."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def recommended_rotation(in_use_since: datetime) -> datetime:
    """When rotating is advised: six calendar months after the key came into use."""
    return add_months(in_use_since, ROTATION_ADVICE_MONTHS)


def in_span(moment: datetime) -> datetime:
    """The moment in UTC (a naive one is taken as UTC); ValueError outside the span.

    Checked before converting: 0001-01-01T00:00+05:00 has no UTC datetime at all, and its
    OverflowError would otherwise escape validation as an internal failure.
    """
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if not EARLIEST <= aware < LATEST:
        raise ValueError(SPAN)
    return aware.astimezone(UTC)


Moment = Annotated[AwareDatetime, AfterValidator(in_span)]
"""A datetime with a zone, inside the span, as UTC: for request fields and records."""
