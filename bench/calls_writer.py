"""A writer ingesting calls as the projection does, in a process of its own, timed."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.calllog.domain import to_us
from services.calllog.store import calls
from services.common.sql import insert_ignore, make_engine

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable

COLUMNS = [c.name for c in calls.columns]
Span = tuple[float, float]


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
    result["rows_per_s"] = round(len(inside) * opts.batch / (t1 - t0))
    result["txn_ms_p50"] = round(ms[len(ms) // 2], 1) if ms else 0.0
    result["txn_ms_max"] = round(ms[-1], 1) if ms else 0.0
    if run is not None:  # the transactions that ran while retention did
        overlap = [(b - a) * 1000 for a, b in spans if a < during[1] and b > during[0]]
        result["txn_ms_max_during"] = round(max(overlap, default=0.0), 1)
    return result
