"""Benchmark call-log retention on PostgreSQL: one expired day of calls going, under ingest.

Two throwaway databases, loaded alike: --rows calls on one wholly expired UTC day (9 days
ago) and half as many again inside the window. Then, on each, a writer ingests fresh calls
as the projection does (its insert-or-ignore, --batch rows per transaction) while:
  (old) the batch delete (retention.delete_expired: 1000 rows per transaction, oldest
        first) removes the expired day from the one-table schema (0001);
  (new) the day partition is detached CONCURRENTLY and dropped (partitions.drop_expired)
        on the day-partitioned schema (0002).
Each is measured against the same writer alone on the same database: the ingest rate over
an equal window, and how long its transactions take (median, longest, and the longest of
those that overlapped the retention: a writer kept waiting shows up there). The writer runs
in a process of its own. The drop is also timed with no writer (with one, the detach first
waits for the transaction in flight to commit). Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from calls_support import pg_database, say

from services.calllog import partitions
from services.calllog.days import DAY_US, day_of
from services.calllog.domain import to_us
from services.calllog.retention import delete_expired
from services.calllog.store import CALL_KEY, calls, create_schema, metadata
from services.common.sql import insert_ignore, make_engine

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator


WEEK = 7 * 86400
COLUMNS = [c.name for c in calls.columns]
Span = tuple[float, float]
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


async def load(url: str, partitioned: bool, n: int, now: datetime) -> None:
    engine = make_engine(url)
    if partitioned:
        await create_schema(engine)
        await partitions.prepare(engine, now, WEEK)
        async with engine.begin() as conn:  # the expired day's partition, as ingest makes it
            await partitions.cover(conn, [{"ts_us": (day_of(to_us(now)) - 9) * DAY_US}])
    else:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)  # the schema of revision 0001
    await engine.dispose()
    pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    today = day_of(to_us(now))
    for day, count, seed in [(today - 9, n, 1), *((today - d, n // 12, 100 + d) for d in range(6))]:
        for chunk in rows_on(day, count, seed):
            await pg.copy_records_to_table("calllog_calls", records=chunk, columns=COLUMNS)
    await pg.execute("VACUUM ANALYZE calllog_calls")
    await pg.close()


async def ingest(url: str, key: list[str], batch: int, stop: Any, ready: Any) -> list[Span]:
    """The projection's insert, `batch` fresh calls per transaction, until told to stop;
    each transaction's (start, commit) on the system-wide monotonic clock."""
    engine = make_engine(url)
    async with engine.connect() as conn:
        compiled = insert_ignore(conn, calls, key).compile(dialect=conn.dialect)
    sql, where = str(compiled), [COLUMNS.index(name) for name in compiled.positiontup or ()]
    now_us, seq, spans = to_us(datetime.now(UTC)), 0, []
    while not stop.is_set():
        rows = []
        for _ in range(batch):
            seq += 1
            row = (uuid.uuid4().hex, f"acct-{seq % 1000}", "key_1", now_us - seq, "GET", "/v1/p",
                   200, 1.0, "10.0.0.1", "bench", seq)  # fmt: skip
            rows.append(tuple(row[i] for i in where))
        began = time.monotonic()
        async with engine.begin() as conn:
            await conn.exec_driver_sql(sql, rows)
        spans.append((began, time.monotonic()))
        ready.set()
    await engine.dispose()
    return spans


def writer(url: str, key: list[str], batch: int, stop: Any, ready: Any, out: Any) -> None:
    """The writer in a process of its own: its Python work never delays the retention."""
    out.put(asyncio.run(ingest(url, key, batch, stop, ready)))


async def window(
    url: str, key: list[str], opts: argparse.Namespace, run: Callable[[], Awaitable[object]] | None
) -> dict[str, float]:
    """Ingest for --window seconds once the writer is going; with `run`, retention starts
    0.5 s in. Batches overlapping the retention are reported apart."""
    ctx = multiprocessing.get_context("spawn")
    stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=writer, args=(url, key, opts.batch, stop, ready, out))
    proc.start()
    await asyncio.to_thread(ready.wait, 60)
    await asyncio.sleep(0.5)
    t0, result, during = time.monotonic(), {}, (0.0, 0.0)
    if run is not None:
        await asyncio.sleep(0.5)
        r0 = time.monotonic()
        await run()
        during = (r0, time.monotonic())
        result["retention_ms"] = round((during[1] - r0) * 1000, 1)
    await asyncio.sleep(max(0.0, t0 + opts.window - time.monotonic()))
    t1 = time.monotonic()
    stop.set()
    spans: list[Span] = await asyncio.to_thread(out.get, True, 60)
    await asyncio.to_thread(proc.join, 60)
    inside = [(a, b) for a, b in spans if t0 <= b <= t1]
    ms = sorted((b - a) * 1000 for a, b in inside)
    result["ingest_rows_per_s"] = round(len(inside) * opts.batch / (t1 - t0))
    result["batch_ms_p50"] = round(ms[len(ms) // 2], 1) if ms else 0.0
    result["batch_ms_max"] = round(ms[-1], 1) if ms else 0.0
    if run is not None:  # the transactions that ran while retention did
        overlap = [(b - a) * 1000 for a, b in spans if a < during[1] and b > during[0]]
        result["batch_ms_max_during"] = round(max(overlap, default=0.0), 1)
    return result


async def measure(opts: argparse.Namespace, partitioned: bool) -> dict[str, Any]:
    now = datetime.now(UTC)
    async with pg_database("postgres", opts.pg_dsn, Path(os.devnull)) as url:
        t = time.perf_counter()
        await load(url, partitioned, opts.rows, now)
        say(
            f"  loaded {opts.rows:,} expired + {opts.rows // 2:,} kept rows "
            f"in {time.perf_counter() - t:.1f} s"
        )
        engine = make_engine(url)
        try:
            if partitioned:

                async def run() -> object:
                    return await partitions.drop_expired(engine, now, WEEK)
            else:

                async def run() -> object:
                    return await delete_expired(engine, now, WEEK, max_batches=opts.rows)

            key = CALL_KEY["postgresql"] if partitioned else ["call_id"]  # 0002 / 0001
            # alone before and after, averaged: this machine's load drifts between windows
            before = await window(url, key, opts, None)
            with_it = await window(url, key, opts, run)
            after = await window(url, key, opts, None)
            alone = {k: round((before[k] + after[k]) / 2, 1) for k in before}
            result = {"retention": with_it, "ingest_alone": alone, "alone_runs": [before, after]}
            if partitioned:  # the drop again, alone: a second expired day loaded likewise
                await load_again(url, opts.rows, now)
                t = time.perf_counter()
                await run()
                result["drop_alone_ms"] = round((time.perf_counter() - t) * 1000, 1)
        finally:
            await engine.dispose()
    return result


async def load_again(url: str, n: int, now: datetime) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await partitions.cover(conn, [{"ts_us": (day_of(to_us(now)) - 10) * DAY_US}])
    await engine.dispose()
    pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    for chunk in rows_on(day_of(to_us(now)) - 10, n, 10):
        await pg.copy_records_to_table("calllog_calls", records=chunk, columns=COLUMNS)
    await pg.execute("VACUUM ANALYZE calllog_calls")
    await pg.close()


async def main_async(opts: argparse.Namespace) -> dict[str, Any]:
    say(f"retention of one day of calls ({opts.rows:,} rows), PostgreSQL, ingest {opts.batch}/txn")
    say("(old) batch delete, one table:")
    old = await measure(opts, partitioned=False)
    say(f"  {json.dumps(old)}")
    say("(new) day partition detached concurrently and dropped:")
    new = await measure(opts, partitioned=True)
    say(f"  {json.dumps(new)}")
    ratio = new["retention"]["ingest_rows_per_s"] / max(new["ingest_alone"]["ingest_rows_per_s"], 1)
    old_ratio = old["retention"]["ingest_rows_per_s"] / max(
        old["ingest_alone"]["ingest_rows_per_s"], 1
    )
    dropped, deleted = new["retention"]["retention_ms"], old["retention"]["retention_ms"]
    alone = new["drop_alone_ms"]
    say(f"drop {dropped} ms under ingest, {alone} ms alone (target < {DROP_TARGET_MS:.0f} ms)")
    say(f"batch delete of the same day: {deleted} ms")
    say(f"ingest during / without retention: {ratio:.2f} (drop) vs {old_ratio:.2f} (batch delete)")
    return {"rows": opts.rows, "old": old, "new": new}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="calls on the expired day")
    parser.add_argument("--batch", type=int, default=5000, help="rows per ingest transaction")
    parser.add_argument("--window", type=float, default=4.0, help="seconds of ingest measured")
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get(
            "KEYLEDGER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    opts = parser.parse_args()
    if opts.quick:
        opts.rows = 100_000
    opts.rows = min(max(opts.rows, 1000), 20_000_000)
    say(json.dumps(asyncio.run(main_async(opts)), separators=(",", ":")))


if __name__ == "__main__":
    main()
