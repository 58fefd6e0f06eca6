"""calls.query.stats, last_used and clients: counts, last use and callers in the last 7 days."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import desc, func, select

from contracts.calllog import (
    MAX_CLIENTS,
    Bucket,
    CallStats,
    CallStatsQuery,
    ClientsQuery,
    KeyClient,
    KeyClients,
    KeyUse,
    LastUsed,
    LastUsedQuery,
    PathCount,
)
from services.calllog.domain import (
    BUCKET_US,
    bucket_starts,
    empty_counts,
    error_rate,
    from_us,
    oldest_kept_us,
    since_bounds,
    status_class,
    to_us,
)
from services.calllog.store import calls as t

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncEngine


async def call_stats(
    engine: AsyncEngine, q: CallStatsQuery, now: datetime, retention_seconds: float
) -> CallStats:
    """Counts per hour/day and status class, top paths, error rate, last use per key."""
    low, now_us = oldest_kept_us(now, retention_seconds) + 1, to_us(now)
    where = [t.c.account_id == q.account_id, t.c.ts_us >= low, t.c.ts_us <= now_us]
    if q.key_id is not None:
        where.append(t.c.key_id == q.key_id)
    bucket = (t.c.ts_us // BUCKET_US[q.by]).label("bucket")
    klass = (t.c.status // 100).label("klass")
    hits = func.count().label("hits")
    per_bucket = select(bucket, klass, hits).where(*where).group_by(bucket, klass)
    paths = (
        select(t.c.path, hits)
        .where(*where)
        .group_by(t.c.path)
        .order_by(desc(hits), t.c.path)
        .limit(q.top)
    )
    last = func.max(t.c.ts_us).label("last")
    keys = select(t.c.key_id, hits, last).where(*where).group_by(t.c.key_id).order_by(desc(last))
    async with engine.connect() as conn:
        bucket_rows = (await conn.execute(per_bucket)).all()
        path_rows = (await conn.execute(paths)).all()
        key_rows = (await conn.execute(keys)).all()
    size = BUCKET_US[q.by]
    series = {start: empty_counts() for start in bucket_starts(low, now_us, q.by)}
    by_class = empty_counts()
    for row in bucket_rows:
        name = status_class(int(row.klass) * 100)
        series[int(row.bucket) * size][name] += int(row.hits)
        by_class[name] += int(row.hits)
    return CallStats(
        account_id=q.account_id,
        key_id=q.key_id,
        by=q.by,
        since=from_us(low - 1),
        until=now,
        total=sum(by_class.values()),
        by_class=by_class,
        error_rate=error_rate(by_class),
        buckets=[Bucket(start=from_us(s), counts=c) for s, c in series.items()],
        top_paths=[PathCount(path=r.path, calls=int(r.hits)) for r in path_rows],
        keys=[
            KeyUse(key_id=r.key_id, calls=int(r.hits), last_used_at=from_us(int(r.last)))
            for r in key_rows
        ],
    )


async def last_used(
    engine: AsyncEngine, q: LastUsedQuery, now: datetime, retention_seconds: float
) -> LastUsed:
    oldest = oldest_kept_us(now, retention_seconds)
    stmt = select(func.max(t.c.ts_us)).where(
        t.c.key_id == q.key_id,
        t.c.account_id == q.account_id,
        t.c.ts_us > oldest,
        t.c.ts_us <= to_us(now),
    )
    async with engine.connect() as conn:
        found = await conn.scalar(stmt)
    return LastUsed(
        account_id=q.account_id,
        key_id=q.key_id,
        last_used_at=from_us(int(found)) if found is not None else None,
        window_start=from_us(oldest),
    )


async def key_clients(
    engine: AsyncEngine, q: ClientsQuery, now: datetime, retention_seconds: float
) -> KeyClients:
    """The key's calls since `q.since` (clamped to the window), grouped by caller address and
    user agent, the most recent first."""
    bounds = since_bounds(q.since, now, retention_seconds)
    where = [
        t.c.key_id == q.key_id,
        t.c.account_id == q.account_id,
        t.c.ts_us >= bounds.low,
        t.c.ts_us < bounds.high,
    ]
    hits, last = func.count().label("hits"), func.max(t.c.ts_us).label("last")
    per_client = (
        select(t.c.caller_ip, t.c.user_agent, hits, last)
        .where(*where)
        .group_by(t.c.caller_ip, t.c.user_agent)
        # ties broken on every column, so a page is the same on SQLite and PostgreSQL
        .order_by(desc(last), desc(hits), t.c.caller_ip.nulls_first(), t.c.user_agent.nulls_first())
        .limit(MAX_CLIENTS)
    )
    async with engine.connect() as conn:
        total = (await conn.execute(select(hits, last).where(*where))).one()
        rows = (await conn.execute(per_client)).all()
    return KeyClients(
        account_id=q.account_id,
        key_id=q.key_id,
        since=bounds.since,
        calls=int(total.hits),
        last_at=from_us(int(total.last)) if total.last is not None else None,
        clients=[
            KeyClient(
                caller_ip=r.caller_ip,
                user_agent=r.user_agent,
                calls=int(r.hits),
                last_at=from_us(int(r.last)),
            )
            for r in rows
        ],
    )
