"""Times as integer microseconds since the Unix epoch, UTC: the one stored representation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Exact (timedelta arithmetic, no float) for any offset; a naive moment is refused,
    since guessing its zone would store a wrong instant without a word."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime has no instant; give it a time zone")
    return (moment - EPOCH) // _ONE_US


def from_micros(value: int) -> datetime:
    """The instant, aware, in UTC."""
    return EPOCH + timedelta(microseconds=value)
