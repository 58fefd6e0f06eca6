"""The call-log projection: CALLS records into rows, idempotent on call id and sequence."""

from __future__ import annotations

import logging
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from contracts import strictjson
from contracts.calllog import PROJECTION_DURABLE
from services.calllog import partitions
from services.calllog.domain import REASONS, Reason, Refusal, call_row
from services.calllog.store import CALL_KEY, calls, tracking
from services.common import tracking as tracking_row
from services.common.sql import insert_ignore, upsert

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("keyledger.calllog")
Record = tuple[str, bytes]  # subject, data: what the projector hands over per message
# Refusals are counted in the tracking table, one row per reason ("refused:<reason>", the
# count in last_seq): in the batch's own transaction, so a redelivered batch is never
# counted twice and every replica reports the same numbers; no schema change needed.
_COUNTER = "refused:"


def record(subject: str, data: bytes) -> Record:
    """The projector's decode step: parsing is left to `project`, which needs the subject."""
    return subject, data


def _parsed(data: bytes) -> dict[str, Any] | None:
    """The JSON object, or None; DuplicateKey when an object repeats a key."""
    try:
        value = strictjson.loads_flat(data)  # a call record is flat: near orjson speed
    except strictjson.DuplicateKey:
        raise
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _row(stream_seq: int, subject: str, data: bytes, count: int | None) -> dict[str, Any]:
    try:
        raw = _parsed(data)
    except strictjson.DuplicateKey as exc:
        raise Refusal("duplicate_key", str(exc)) from None
    return call_row(stream_seq, subject, raw, count)


def _refused(stream_seq: int, subject: str, refusal: Refusal) -> None:
    """One line per refusal, naming the stream sequence (where an operator finds it); values
    from the body are never logged."""
    if refusal.reason == "malformed":
        log.error(
            "calllog: skipped malformed call record at stream sequence %d: %s",
            stream_seq,
            refusal,
        )
    else:
        log.warning(
            "calllog: refused call record at stream sequence %d on %s (%s): %s",
            stream_seq,
            subject,
            refusal.reason,
            refusal,
        )


async def project(
    engine: AsyncEngine,
    batch: list[tuple[int, Record]],
    name: str = PROJECTION_DURABLE,
    partition_count: int | None = None,
) -> int:
    """Apply a batch, its refusal counts and the tracking row `name` in one transaction;
    returns rows offered. A refused record is logged, counted and skipped: it never stalls
    the consumer, and is never stored as a call.

    name: the durable the batch came from (one tracking row per CALLS partition);
    partition_count: CALLS's (None: subjects from before partitions, call_row)."""
    async with engine.begin() as conn:
        # locked: two owners of one partition for a moment apply its batches one at a time
        last = await tracking_row.claim(conn, tracking, name)
        rows: dict[str, dict[str, Any]] = {}
        refused: dict[Reason, int] = {}
        for stream_seq, (subject, data) in batch:
            if stream_seq <= last:
                continue
            try:
                row = _row(stream_seq, subject, data, partition_count)
            except Refusal as refusal:
                _refused(stream_seq, subject, refusal)
                refused[refusal.reason] = refused.get(refusal.reason, 0) + 1
                continue
            rows.setdefault(row["call_id"], row)
        if rows:
            await partitions.cover(conn, rows.values())  # PostgreSQL: a partition per day
            # a call id seen before (a gateway's retry past the duplicate window) is kept once
            sql, order = _insert_sql(conn)
            await conn.exec_driver_sql(sql, list(map(order, rows.values())))
        for reason, count in refused.items():
            await _count(conn, reason, count)
        await tracking_row.advance(conn, tracking, name, last, [seq for seq, _ in batch])
        return len(rows)


async def _count(conn: AsyncConnection, reason: Reason, count: int) -> None:
    stmt = upsert(conn, tracking, ["projection"], {"last_seq": tracking.c.last_seq + count})
    await conn.execute(stmt, {"projection": _COUNTER + reason, "last_seq": count})


async def refusals(engine: AsyncEngine) -> dict[str, int]:
    """Records refused since the log began, by reason (every reason, zeros included)."""
    found = select(tracking.c.projection, tracking.c.last_seq).where(
        tracking.c.projection.startswith(_COUNTER)
    )
    async with engine.connect() as conn:
        counts = {name[len(_COUNTER) :]: int(n) for name, n in (await conn.execute(found)).all()}
    return {reason: counts.get(reason, 0) for reason in REASONS}


_SQL: dict[str, tuple[str, itemgetter[str]]] = {}


def _insert_sql(conn: AsyncConnection) -> tuple[str, itemgetter[str]]:
    """The Core insert-or-ignore, compiled once per dialect and run as the driver's own
    executemany: SQLAlchemy's per-row parameter handling cost as much as the insert."""
    found = _SQL.get(conn.dialect.name)
    if found is None:
        key = CALL_KEY[conn.dialect.name]
        compiled = insert_ignore(conn, calls, key).compile(dialect=conn.dialect)
        found = _SQL[conn.dialect.name] = (str(compiled), itemgetter(*compiled.positiontup or ()))
    return found


async def position(engine: AsyncEngine, name: str = PROJECTION_DURABLE) -> int:
    """The last stream sequence applied from durable `name` (a partition's, or the legacy)."""
    return await tracking_row.position(engine, tracking, name)


async def positions(engine: AsyncEngine, names: list[str]) -> dict[str, int]:
    """The tracking rows of `names` (0 for one never written)."""
    found = select(tracking.c.projection, tracking.c.last_seq).where(
        tracking.c.projection.in_(names)
    )
    async with engine.connect() as conn:
        have = {name: int(seq) for name, seq in (await conn.execute(found)).all()}
    return {name: have.get(name, 0) for name in names}
