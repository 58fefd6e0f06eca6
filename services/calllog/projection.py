"""The call-log projection: CALLS records into rows, idempotent on call id and sequence."""

from __future__ import annotations

import logging
from operator import itemgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.calllog import PROJECTION_DURABLE
from services.calllog.domain import call_row
from services.calllog.store import calls, tracking
from services.common import tracking as tracking_row
from services.common.sql import insert_ignore

log = logging.getLogger("keyledger.calllog")


async def project(engine: AsyncEngine, batch: list[tuple[int, dict[str, Any] | None]]) -> int:
    """Apply a batch and the tracking row in one transaction; returns rows offered.

    A malformed record is logged by sequence and skipped: it must never stall the consumer.
    """
    async with engine.begin() as conn:
        last = await tracking_row.last_seq(conn, tracking, PROJECTION_DURABLE)
        rows: dict[str, dict[str, Any]] = {}
        for stream_seq, raw in batch:
            if stream_seq <= last:
                continue
            try:
                row = call_row(stream_seq, raw)
            except ValueError as exc:
                log.error(
                    "calllog: skipped malformed call record at stream sequence %d: %s",
                    stream_seq,
                    exc,
                )
                continue
            rows.setdefault(row["call_id"], row)
        if rows:
            # a call id seen before (a gateway's retry past the duplicate window) is kept once
            sql, order = _insert_sql(conn)
            await conn.exec_driver_sql(sql, list(map(order, rows.values())))
        await tracking_row.advance(
            conn, tracking, PROJECTION_DURABLE, last, [seq for seq, _ in batch]
        )
        return len(rows)


_SQL: dict[str, tuple[str, itemgetter[str]]] = {}


def _insert_sql(conn: AsyncConnection) -> tuple[str, itemgetter[str]]:
    """The Core insert-or-ignore, compiled once per dialect and run as the driver's own
    executemany: SQLAlchemy's per-row parameter handling cost as much as the insert."""
    found = _SQL.get(conn.dialect.name)
    if found is None:
        compiled = insert_ignore(conn, calls, ["call_id"]).compile(dialect=conn.dialect)
        found = _SQL[conn.dialect.name] = (str(compiled), itemgetter(*compiled.positiontup or ()))
    return found


async def position(engine: AsyncEngine) -> int:
    """The last stream sequence applied."""
    return await tracking_row.position(engine, tracking, PROJECTION_DURABLE)
