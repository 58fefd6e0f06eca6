"""Calls written through the real projection and read back, for the day-partition tests."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from contracts.calllog import CallRecorded, ListCalls, recorded_subject
from services.calllog import projection
from services.calllog.queries.listing import list_calls
from services.calllog.store import calls

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncEngine

WEEK = 7 * 86400
pg_only = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
_seq = itertools.count(1)


async def stored(engine: AsyncEngine, *records: CallRecorded) -> int:
    """The records as one projection batch (partitions made on demand included)."""
    batch = [
        (next(_seq), (recorded_subject(r.account_id), r.model_dump_json().encode()))
        for r in records
    ]
    return await projection.project(engine, batch)


async def pages(
    engine: AsyncEngine, account: str, now: datetime, *, limit: int = 2, cursor: str | None = None
) -> list[str]:
    """Every call id listed from `cursor` on, page by page."""
    ids: list[str] = []
    while True:
        q = ListCalls(account_id=account, limit=limit, cursor=cursor)
        page = await list_calls(engine, q, now, WEEK)
        ids += [item["call_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def newest_first(records: list[CallRecorded], low: datetime, high: datetime) -> list[str]:
    """What the window (low, high] shows, in the listing's order (ts, then call id, down)."""
    shown = [r for r in records if low < r.ts <= high]
    return [r.call_id for r in sorted(shown, key=lambda r: (r.ts, r.call_id), reverse=True)]


async def rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        found = await conn.execute(select(calls).order_by(calls.c.call_id, calls.c.ts_us))
        return [tuple(row) for row in found.all()]


async def partition_names(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        found = await conn.exec_driver_sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'calllog_calls'::regclass ORDER BY 1"
        )
        return [str(name) for (name,) in found.all()]
