"""One grammar of durations and moments for the CLI (README: Durations and times), with limits."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import typer

from contracts.calendar import SPAN, add_months, in_span
from contracts.keys import MAX_GRACE_SECONDS

T = TypeVar("T")

FIXED_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
CALENDAR_MONTHS = {"mo": 1, "y": 12}
# days and up: `+5m` on a date is a slip for `+5mo`, refused rather than read as minutes
AS_OF_UNITS = ("d", "w", "mo", "y")

_AMOUNT = re.compile(r"(\d+)(mo|[smhdwy])")


@dataclass(frozen=True)
class Amount:
    """`count` of `unit`: a fixed length of time or a number of calendar months."""

    count: int
    unit: str

    def seconds(self) -> int:
        """The fixed length in seconds; KeyError for calendar units (they have none)."""
        return self.count * FIXED_SECONDS[self.unit]

    def after(self, moment: datetime) -> datetime:
        """The moment this long after `moment` (calendar units by calendar months)."""
        if self.unit in CALENDAR_MONTHS:
            return add_months(moment, self.count * CALENDAR_MONTHS[self.unit])
        return moment + timedelta(seconds=self.seconds())


def parse_amount(text: str, units: Collection[str]) -> Amount | None:
    """`7d`, `2w`, `5mo` ... as an Amount if its unit is one of `units`, else None."""
    found = _AMOUNT.fullmatch(text)
    if found is None or found[2] not in units:
        return None
    return Amount(int(found[1]), found[2])


def parse_duration(text: str) -> int:
    """`30s`, `15m`, `2h`, `7d`, `2w` as seconds; ValueError for anything else."""
    amount = parse_amount(text.strip(), FIXED_SECONDS)
    if amount is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 2h, 7d or 2w")
    return amount.seconds()


def parse_grace(text: str) -> int:
    """--grace: a duration in seconds, at most the keys service's maximum (30 days)."""
    seconds = parse_duration(text)
    if seconds > MAX_GRACE_SECONDS:
        raise ValueError(f"{text!r} is longer than the {MAX_GRACE_SECONDS // 86400}d maximum")
    return seconds


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """--since: a duration ago (`24h`, `7d`) or an ISO date / date-time, in UTC."""
    now = now or datetime.now(UTC)
    amount = parse_amount(text.strip(), FIXED_SECONDS)
    if amount is not None:
        try:
            return in_span(now - timedelta(seconds=amount.seconds()))
        except OverflowError:  # 99999999999d: before datetime's own range
            raise ValueError(SPAN) from None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("use a duration (30m, 24h, 7d, 2w) or an ISO time") from None
    return in_span(moment)  # a naive time is UTC


def parse_as_of(text: str | None, now: datetime | None = None) -> datetime | None:
    """--as-of: `now`, `+10d`, `+2w`, `+5mo`, `+1y` (calendar months, UTC), or an ISO date /
    date-time."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    text = text.strip()
    if text == "now":
        return now
    amount = parse_amount(text[1:], AS_OF_UNITS) if text.startswith("+") else None
    if amount is not None:
        try:
            return in_span(amount.after(now))
        except (OverflowError, ValueError):  # +999999y: past datetime's own range
            raise ValueError(SPAN) from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "not a date: use YYYY-MM-DD, an ISO date-time, now, or +10d / +2w / +5mo / +1y"
        ) from None
    return in_span(moment)  # a naive time is UTC


def _usage_error(parse: Callable[[str], T], value: str) -> T:
    """A bad value is a usage error (exit 2), raised before anything is sent."""
    try:
        return parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def grace_option(value: str | None) -> str | None:
    """Typer callback for --grace: checked here, sent as seconds by the command."""
    if value is not None:
        _usage_error(parse_grace, value)
    return value


def since_option(value: str | None) -> str | None:
    """Typer callback for --since: sent as an absolute UTC time."""
    return None if value is None else _usage_error(parse_since, value).isoformat()


def as_of_option(value: str | None) -> str | None:
    """Typer callback for --as-of: sent as an absolute UTC time."""
    moment = _usage_error(parse_as_of, value) if value is not None else None
    return moment.isoformat() if moment else None
