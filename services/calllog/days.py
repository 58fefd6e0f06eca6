"""Rules of the PostgreSQL day partitions of calllog_calls: which days, their names and DDL."""

from __future__ import annotations

import re
import zlib
from datetime import date, timedelta
from typing import TYPE_CHECKING

from services.calllog.domain import US

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

PARENT = "calllog_calls"
SCHEMA = "calllog_days"  # partitions live apart, so the public schema keeps the two tables
DAY_US = 86_400 * US
AHEAD_DAYS = 3  # made ahead at start and by every retention run: rows never wait for DDL
# one partition per day this close to today; further out (a gateway's clock years off, a
# forged date) the partition covers an aligned block of days, so calls dated anywhere in
# 1970..8999 make O(log) partitions instead of one per day
NEAR_DAYS = 31
# serialises partition DDL across replicas (pg_advisory_xact_lock)
DDL_LOCK = zlib.crc32(b"keyledger-calllog-days")
_BOUND = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")
_EPOCH = date(1970, 1, 1)

Span = tuple[int, int]  # [lo, hi) in days since the epoch


def day_of(ts_us: int) -> int:
    return ts_us // DAY_US


def bound_us(expr: str) -> tuple[int, int]:
    """[lo, hi) in microseconds from pg_get_expr(relpartbound): FOR VALUES FROM (a) TO (b)."""
    found = _BOUND.search(expr)
    if found is None:
        raise ValueError(f"not a range partition bound: {expr}")
    return int(found[1]), int(found[2])


def day_span(lo_us: int, hi_us: int) -> Span:
    """The days a partition touches (ours are day-aligned; a stranger one counts whole)."""
    return lo_us // DAY_US, -(-hi_us // DAY_US)


def covered(day: int, taken: Sequence[Span]) -> bool:
    return any(lo <= day < hi for lo, hi in taken)


def uncovered(days: Iterable[int], taken: Sequence[Span]) -> list[int]:
    return sorted(day for day in set(days) if not covered(day, taken))


def span_for(day: int, today: int, taken: Sequence[Span]) -> Span:
    """The range a new partition holding `day` covers: the day itself near today, else the
    aligned block of 2^k days (k with 2^k between a quarter and half the distance from
    today) around it, clipped to the free gap between existing partitions."""
    distance = abs(day - today)
    if distance <= NEAR_DAYS:
        return day, day + 1
    size = 1 << (distance.bit_length() - 2)
    lo = day // size * size
    hi = lo + size
    for t_lo, t_hi in taken:
        if t_hi <= day:
            lo = max(lo, t_hi)
        elif t_lo > day:
            hi = min(hi, t_lo)
    return lo, hi


def name_for(span: Span) -> str:
    """calls_20261130 for a day, calls_20270101_16d for a block: the lowest day is unique,
    since partitions never overlap."""
    lo, hi = span
    first = (_EPOCH + timedelta(days=lo)).strftime("%Y%m%d")
    return f"calls_{first}" if hi - lo == 1 else f"calls_{first}_{hi - lo}d"


def create_sql(span: Span) -> list[str]:
    """A standalone table attached afterwards: ATTACH takes SHARE UPDATE EXCLUSIVE on the
    parent, which inserts and reads do not wait for (CREATE TABLE ... PARTITION OF would
    take ACCESS EXCLUSIVE). The parent's indexes and primary key are made on attach."""
    table = f"{SCHEMA}.{name_for(span)}"
    lo, hi = span
    return [
        f"CREATE TABLE {table} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        f"ALTER TABLE {PARENT} ATTACH PARTITION {table} "
        f"FOR VALUES FROM ({lo * DAY_US}) TO ({hi * DAY_US})",
    ]


# the attached partitions and their bounds; one pending a concurrent detach is left out:
# new transactions no longer route rows to it
PARTITIONS_SQL = (
    "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), i.inhdetachpending "
    "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    f"WHERE i.inhparent = 'public.{PARENT}'::regclass"
)
IS_PARTITIONED_SQL = (
    "SELECT c.relkind = 'p' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    f"WHERE n.nspname = 'public' AND c.relname = '{PARENT}'"
)
# tables left in the schema by a retention run that detached but died before dropping
ORPHANS_SQL = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    f"WHERE n.nspname = '{SCHEMA}' AND c.relkind = 'r' AND NOT c.relispartition "
    "AND c.relname LIKE 'calls\\_%'"
)
