"""The KEYS projection: active keys, people and admins, folded per batch and written at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from contracts.notifier import KEYS_TRACKING
from services.common import tracking as tracking_row
from services.notifier.folding import Batch, Fold, Head, fold
from services.notifier.store import heads, keys, people, tracking

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# The tracking row's name. 0001's projection, which did not check chains, tracked itself as
# `notifier-keys`: under a new name this one starts at 0 on a database migrated from 0001
# and rebuilds its rows from KEYS (see project), while notifiers of the previous release
# still running during a rolling upgrade go on with their own row.
PROJECTION = KEYS_TRACKING
IN_CHUNK = 500  # account ids per IN (...): SQLite allows 999 bound parameters in old builds


async def project(engine: AsyncEngine, batch: Batch) -> int:
    """Apply a batch, the heads it moved and the tracking row in one transaction; returns
    events applied. Replicas take turns (services/common/projector.py), and a batch at or
    below the tracking row changes nothing: each event is applied once."""
    async with engine.begin() as conn:
        last = await tracking_row.last_seq(conn, tracking, PROJECTION)
        if last == 0:
            # from the stream's start, this projection owns every row: what an earlier
            # release left (a database migrated from 0001) is rebuilt, never mixed in
            for table in (keys, people, heads):
                await conn.execute(delete(table))
        accounts = {str(raw["stream_id"]) for seq, raw in batch if raw is not None and seq > last}
        folded, applied = fold(batch, last, await _heads(conn, sorted(accounts)))
        await _write(conn, folded)
        await tracking_row.advance(conn, tracking, PROJECTION, last, [seq for seq, _ in batch])
        return applied


async def _heads(conn: AsyncConnection, accounts: list[str]) -> dict[str, Head]:
    found: dict[str, Head] = {}
    for start in range(0, len(accounts), IN_CHUNK):
        chunk = accounts[start : start + IN_CHUNK]
        rows = await conn.execute(
            select(heads.c.account_id, heads.c.sequence, heads.c.hash).where(
                heads.c.account_id.in_(chunk)
            )
        )
        found.update((a, (int(n), str(h))) for a, n, h in rows)
    return found


async def _write(conn: AsyncConnection, folded: Fold) -> None:
    """People first, then revocations of people seen in earlier batches, then keys."""
    if folded.people:
        # sorted: the lock order every writer of these rows follows (no deadlocks on PostgreSQL)
        rows = [{"account_id": a, "user": u, **v} for (a, u), v in sorted(folded.people.items())]
        await conn.execute(_replace(conn, people, ["account_id", "user"]), rows)
    if folded.revoked:
        await conn.execute(
            update(people)
            .where(people.c.account_id == bindparam("a"), people.c.user == bindparam("u"))
            .values(admin=False),
            [{"a": a, "u": u} for a, u in folded.revoked],
        )
    gone = [a for a, row in folded.keys.items() if row is None]
    if gone:
        await conn.execute(delete(keys).where(keys.c.account_id.in_(gone)))
    if folded.dropped:
        await conn.execute(
            delete(keys).where(
                keys.c.account_id == bindparam("a"), keys.c.key_id == bindparam("k")
            ),
            [{"a": a, "k": k} for a, k in folded.dropped.items()],
        )
    rows = [row for _, row in sorted(folded.keys.items()) if row is not None]
    if rows:
        await conn.execute(_replace(conn, keys, ["account_id"]), rows)
    moved = [
        {"account_id": a, "sequence": folded.heads[a][0], "hash": folded.heads[a][1]}
        for a in sorted(folded.moved)
    ]
    if moved:
        await conn.execute(_replace(conn, heads, ["account_id"]), moved)


def _replace(conn: AsyncConnection, table: Table, key: list[str]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE every other column from the new row."""
    stmt = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    others = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in key}
    return stmt.on_conflict_do_update(index_elements=key, set_=others)


async def position(engine: AsyncEngine) -> int:
    """The last stream sequence applied."""
    return await tracking_row.position(engine, tracking, PROJECTION)
