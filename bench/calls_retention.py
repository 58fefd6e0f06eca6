"""Benchmark call-log retention on PostgreSQL: one expired day of calls going, under ingest.

Two throwaway databases, loaded alike: half of --rows calls inside the window, then, each
round, --rows calls on a wholly expired UTC day. In each round a writer ingests fresh calls
as the projection does (its insert-or-ignore, --batch rows per transaction) alone, and then
while:
  (old) the batch delete (retention.delete_expired: 1000 rows per transaction, oldest
        first) removes the expired day from the one-table schema (0001);
  (new) the day partition is detached CONCURRENTLY and dropped (partitions.drop_expired)
        on the day-partitioned schema (0002).
Reported (medians over --repeat rounds): the time retention takes, the ingest rate during
it over the rate alone in the window just before, and the writer's transaction times (the
longest of those that overlapped retention: a writer kept waiting shows up there). The
writer runs in a process of its own. The drop is also timed with no writer (with one, the
detach first waits for the transaction in flight to commit). Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from calls_support import add_pg_dsn, pg_database, say
from calls_writer import window

from services.calllog import partitions
from services.calllog.days import DAY_US, day_of
from services.calllog.domain import to_us
from services.calllog.retention import delete_expired
from services.calllog.store import CALL_KEY, calls, create_schema, metadata
from services.common.sql import make_engine

if TYPE_CHECKING:
    from collections.abc import Iterator


WEEK = 7 * 86400
COLUMNS = [c.name for c in calls.columns]
DROP_TARGET_MS = 100.0


def rows_on(day: int, n: int, seed: int) -> Iterator[list[tuple[Any, ...]]]:
    """n calls spread over `day` (days since the epoch), 100,000 per chunk."""
    rng = random.Random(seed)
    for first in range(0, n, 100_000):
        yield [
            (uuid.UUID(int=rng.getrandbits(128)).hex, f"acct-{i % 1000}", f"key_{i % 1000}",
             day * DAY_US + rng.randrange(DAY_US), "GET", "/v1/contacts", 200, 3.0,
             "10.0.0.1", "bench", i)
            for i in range(first, min(first + 100_000, n))
        ]  # fmt: skip


async def load(url: str, partitioned: bool, days: list[tuple[int, int]]) -> None:
    """(day, calls) loaded with COPY; on 0002 each day's partition made as ingest makes it."""
    engine = make_engine(url)
    async with engine.begin() as conn:
        if partitioned:
            await partitions.cover(conn, [{"ts_us": day * DAY_US} for day, _ in days])
        else:
            await conn.run_sync(metadata.create_all)  # the schema of revision 0001
    await engine.dispose()
    pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    for day, count in days:
        for chunk in rows_on(day, count, seed=day):
            await pg.copy_records_to_table("calllog_calls", records=chunk, columns=COLUMNS)
    await pg.execute("VACUUM ANALYZE calllog_calls")
    await pg.close()


async def measure(opts: argparse.Namespace, partitioned: bool) -> dict[str, Any]:
    """--repeat rounds, each: an expired day loaded, ingest alone, ingest with retention;
    then, on 0002, as many drops with no writer."""
    now = datetime.now(UTC)
    today = day_of(to_us(now))
    key = CALL_KEY["postgresql"] if partitioned else ["call_id"]  # 0002 / 0001
    rounds: list[dict[str, Any]] = []
    async with pg_database("postgres", opts.pg_dsn, Path(os.devnull)) as url:
        engine = make_engine(url)
        if partitioned:
            await create_schema(engine)  # 0002, and the days of the window
        await load(url, partitioned, [(today - d, opts.rows // 12) for d in range(6)])

        async def run() -> object:
            if partitioned:
                return await partitions.drop_expired(engine, now, WEEK)
            return await delete_expired(engine, now, WEEK, max_batches=opts.rows)

        try:
            for i in range(opts.repeat):
                await load(url, partitioned, [(today - 9 - i, opts.rows)])
                alone = await window(url, key, opts, None)
                during = await window(url, key, opts, run)
                rounds.append({"alone": alone, "during": during})
                say(f"  {json.dumps(rounds[-1])}")
            drops = []
            for i in range(opts.repeat if partitioned else 0):
                await load(url, partitioned, [(today - 20 - i, opts.rows)])
                t = time.perf_counter()
                await run()
                drops.append(round((time.perf_counter() - t) * 1000, 1))
        finally:
            await engine.dispose()
    return summary(rounds, drops)


def summary(rounds: list[dict[str, Any]], drops: list[float]) -> dict[str, Any]:
    def mid(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    return {
        "retention_ms": mid([r["during"]["retention_ms"] for r in rounds]),
        "drop_alone_ms": mid(drops) if drops else None,
        # ingest during / without retention, in adjacent windows (the load here drifts)
        "ingest_ratio": mid([r["during"]["rows_per_s"] / r["alone"]["rows_per_s"] for r in rounds]),
        "txn_ms_max_during": max(r["during"]["txn_ms_max_during"] for r in rounds),
        "txn_ms_max_alone": max(r["alone"]["txn_ms_max"] for r in rounds),
        "txn_ms_p50_alone": mid([r["alone"]["txn_ms_p50"] for r in rounds]),
        "rounds": rounds,
    }


async def main_async(opts: argparse.Namespace) -> dict[str, Any]:
    say(f"retention of one day of calls ({opts.rows:,} rows), PostgreSQL, ingest {opts.batch}/txn")
    say("(old) batch delete, one table:")
    old = await measure(opts, partitioned=False)
    say("(new) day partition detached concurrently and dropped:")
    new = await measure(opts, partitioned=True)
    say(
        f"drop {new['retention_ms']} ms under ingest, {new['drop_alone_ms']} ms alone "
        f"(target < {DROP_TARGET_MS:.0f} ms); batch delete {old['retention_ms']} ms"
    )
    say(
        f"ingest during / without: {new['ingest_ratio']} (drop), {old['ingest_ratio']} (delete); "
        f"longest writer txn during / alone: {new['txn_ms_max_during']} / "
        f"{new['txn_ms_max_alone']} ms (drop), {old['txn_ms_max_during']} / "
        f"{old['txn_ms_max_alone']} ms (delete)"
    )
    return {"rows": opts.rows, "old": old, "new": new}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="calls on the expired day")
    parser.add_argument("--batch", type=int, default=5000, help="rows per ingest transaction")
    parser.add_argument("--window", type=float, default=4.0, help="seconds of ingest measured")
    parser.add_argument("--repeat", type=int, default=3, help="rounds on each schema")
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    add_pg_dsn(parser)
    opts = parser.parse_args()
    if opts.quick:
        opts.rows = 100_000
    opts.rows = min(max(opts.rows, 1000), 20_000_000)
    say(json.dumps(asyncio.run(main_async(opts)), separators=(",", ":")))


if __name__ == "__main__":
    main()
