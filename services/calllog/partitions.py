"""PostgreSQL day partitions of calllog_calls: made ahead and on demand, dropped when expired."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from services.calllog import days
from services.calllog.domain import oldest_kept_us, to_us

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("keyledger.calllog")
_RETENTION_LOCK = days.DDL_LOCK + 1  # one retention run at a time across replicas
FRESH_SECONDS = 5.0
_known: dict[str, tuple[float, list[days.Span]]] = {}  # database URL: (read at, bounds)


@dataclass(frozen=True)
class Partition:
    name: str
    lo_us: int
    hi_us: int
    pending: bool  # a concurrent detach began and did not finish

    @property
    def span(self) -> days.Span:
        return days.day_span(self.lo_us, self.hi_us)


def partitioned(db: AsyncConnection | AsyncEngine) -> bool:
    """Day partitions are PostgreSQL's; SQLite keeps one table and batch deletes."""
    return db.dialect.name == "postgresql"


async def partitions(conn: AsyncConnection) -> list[Partition]:
    found: Any = await conn.exec_driver_sql(days.PARTITIONS_SQL)
    parts = []
    for name, bound, pending in found.all():
        lo, hi = days.bound_us(bound)
        parts.append(Partition(name, lo, hi, bool(pending)))
    return parts


async def _taken(conn: AsyncConnection, *, pending: bool = False) -> list[days.Span]:
    return [p.span for p in await partitions(conn) if pending or not p.pending]


async def cover(conn: AsyncConnection, rows: Iterable[dict[str, Any]]) -> None:
    """Before a batch's insert, in its transaction: make a partition for every day the batch
    has none for, so no row is refused. The bounds are read from the catalog (~0.5 ms) at
    most every FRESH_SECONDS; a partition dropped meanwhile by another replica (an expired
    day, so only a late row needs it) fails that batch, redelivered until the bounds are
    read again. The DDL runs in the batch's transaction, not on a second connection: a
    pool full of batches each waiting for one more connection would stall them all."""
    if not partitioned(conn):
        return
    wanted = {row["ts_us"] // days.DAY_US for row in rows}
    where = str(conn.engine.url)
    seen = _known.get(where)
    if seen and time.monotonic() - seen[0] < FRESH_SECONDS and not days.uncovered(wanted, seen[1]):
        return
    taken = await _taken(conn)
    if not taken and not await _is_partitioned(conn):
        return
    if days.uncovered(wanted, taken):
        await _create(conn, wanted, days.day_of(to_us(datetime.now(UTC))))
        taken = await _taken(conn)
    _known[where] = (time.monotonic(), taken)


async def prepare(engine: AsyncEngine, now: datetime, retention_seconds: float) -> list[str]:
    """Partitions for every day of the window and AHEAD_DAYS after today, made before their
    rows arrive (at start and by each retention run); returns the names made."""
    async with engine.begin() as conn:
        if not partitioned(conn) or not await _is_partitioned(conn):
            return []
        first = days.day_of(oldest_kept_us(now, retention_seconds))
        today = days.day_of(to_us(now))
        return await _create(conn, range(first, today + days.AHEAD_DAYS + 1), today)


async def _is_partitioned(conn: AsyncConnection) -> bool:
    return bool(await conn.scalar(text(days.IS_PARTITIONED_SQL)))


async def _create(conn: AsyncConnection, wanted: Iterable[int], today: int) -> list[str]:
    """Serialised with every other replica's: the catalog is read again under the lock. A
    day whose partition is being detached (expired) is left alone: a row for it fails its
    batch, which is redelivered and lands in a new partition once the detach is over."""
    await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({days.DDL_LOCK})")
    taken = await _taken(conn, pending=True)
    made: list[str] = []
    for day in days.uncovered(wanted, taken):
        if days.covered(day, taken):  # inside a block made earlier in this loop
            continue
        span = days.span_for(day, today, taken)
        for sql in days.create_sql(span):
            await conn.exec_driver_sql(sql)
        taken.append(span)
        made.append(days.name_for(span))
    if made:
        log.info("calllog: made partitions %s", ", ".join(made))
    return made


async def drop_expired(engine: AsyncEngine, now: datetime, retention_seconds: float) -> list[str]:
    """Drop every partition whose rows are all older than the window: DETACH ... CONCURRENTLY
    (SHARE UPDATE EXCLUSIVE on the parent; it waits for transactions already using the
    partition, while new inserts and reads go on), then DROP of the detached table (ACCESS
    EXCLUSIVE on that table only). The partly expired day stays, hidden by every query's
    window, until it is whole. Returns the names dropped."""
    cutoff = oldest_kept_us(now, retention_seconds)
    async with engine.connect() as conn:
        if not partitioned(conn):
            return []
        # DETACH ... CONCURRENTLY cannot run inside a transaction block
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        if not await conn.scalar(text(f"SELECT pg_try_advisory_lock({_RETENTION_LOCK})")):
            return []  # another replica is at it
        try:
            return await _drop(conn, cutoff)
        finally:
            _known.pop(str(engine.url), None)  # this process reads the bounds afresh
            await conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_RETENTION_LOCK})")


async def _drop(conn: AsyncConnection, cutoff: int) -> list[str]:
    dropped: list[str] = []
    # a pending detach first: PostgreSQL allows one per parent at a time
    for part in sorted(await partitions(conn), key=lambda p: not p.pending):
        table = f"{days.SCHEMA}.{part.name}"
        if part.pending:  # a run that died mid-detach: finish it
            await conn.exec_driver_sql(
                f"ALTER TABLE {days.PARENT} DETACH PARTITION {table} FINALIZE"
            )
        elif part.hi_us <= cutoff + 1:  # every row's ts < hi <= cutoff + 1: all expired
            await conn.exec_driver_sql(
                f"ALTER TABLE {days.PARENT} DETACH PARTITION {table} CONCURRENTLY"
            )
        else:
            continue
        await conn.exec_driver_sql(f"DROP TABLE {table}")
        dropped.append(part.name)
    for (orphan,) in (await conn.exec_driver_sql(days.ORPHANS_SQL)).all():
        await conn.exec_driver_sql(f"DROP TABLE {days.SCHEMA}.{orphan}")
        dropped.append(orphan)
    if dropped:
        log.info("calllog: retention dropped partitions %s", ", ".join(dropped))
    return dropped
