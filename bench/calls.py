"""Benchmark the call log on SQLite and PostgreSQL, as ratios against the raw paths.

(a) bare nats-py: publish N call records to CALLS (1000 acks in flight), then pull-consume
    them (fetch 1000, one ack per batch);
(b) the same rows inserted with the database driver, 1000 rows per transaction (sqlite3
    executemany; asyncpg COPY, executemany shown too);
(c) the calllog service (`faststream run`, its own process) ingesting the same N records
    from CALLS into an empty table, timed from its first applied batch to its last;
(d) on PostgreSQL, the calllog service ingesting --scale-calls records with 1 replica and
    with --replicas replicas (CALLS's partitions shared out), CPU per process beside it
    (bench/calls_scale.py); --scale-only runs just this;
then calls.query.list p50/p99 over NATS for one account with --rows rows in the table.
Traffic goes to 127.0.0.1 only, to a nats-server of its own on a free port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import nats
from calls_scale import reset, row_count, scale_figures
from calls_support import Server, add_pg_dsn, percentile, pg_database, run_service, say
from nats.js import api

from contracts.calllog import CALLS_STREAM, CallRecorded, recorded_subject
from services.calllog.domain import call_row, to_us
from services.calllog.settings import CallLogSettings
from services.calllog.store import calls, create_schema, metadata
from services.common.pull import BatchPull
from services.common.sql import make_engine
from services.common.streams import ensure_stream

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator

    from nats.aio.client import Client

ROOT = Path(__file__).resolve().parent.parent
BATCH = CallLogSettings().calls_ingest_batch  # rows per transaction, as the service runs
COLUMNS = [c.name for c in calls.columns]
PATHS = ["/v1/contacts", "/v1/contacts/42", "/v1/deals", "/v1/ping", "/v1/companies/7/notes"]
STATUSES = [200] * 12 + [201, 204, 301, 400, 401, 404, 429, 500]
AGENT = "Mozilla/5.0 (X11; Linux x86_64) integration-client/4.2 python-requests/2.32"
INGEST_TARGET, QUERY_P99_MS = 0.6, 5.0


def make_records(n: int, accounts: int = 1000, seed: int = 1) -> list[bytes]:
    rng, now = random.Random(seed), datetime.now(UTC)
    records = []
    for i in range(n):
        account = f"acct-{rng.randrange(accounts)}"
        call = CallRecorded(
            call_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            account_id=account,
            key_id=f"key_{account}",
            ts=now - timedelta(seconds=n - i),
            method=rng.choice(["GET", "GET", "POST"]),
            path=rng.choice(PATHS),
            status=rng.choice(STATUSES),
            duration_ms=round(rng.uniform(0.5, 80), 3),
            caller_ip=f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
            user_agent=AGENT,
        )
        records.append(call.model_dump_json().encode())
    return records


async def bare_nats(nc: Client, records: list[bytes]) -> dict[str, float]:
    """(a): publish with 1000 acks in flight; then pull-consume all, with nats-py's fetch()
    and with a callback-driven pull (services.common.pull, what the calllog service uses)."""
    js = nc.jetstream(timeout=30)
    started = time.perf_counter()
    await publish_all(nc, records)
    published = time.perf_counter() - started
    rates = {"publish": len(records) / published}
    for how in ("fetch", "callback"):
        config = api.ConsumerConfig(
            durable_name=f"bench-{how}",
            filter_subject="calls.recorded.>",
            ack_policy=api.AckPolicy.ALL,
            max_ack_pending=BATCH,
        )
        await js.add_consumer("CALLS", config)
        if how == "fetch":
            sub: Any = await js.pull_subscribe_bind(durable=f"bench-{how}", stream="CALLS")
        else:
            sub = BatchPull(nc, "CALLS", f"bench-{how}")
            await sub.start()
        seen, started = 0, time.perf_counter()
        while seen < len(records):
            msgs = await sub.fetch(BATCH, timeout=5)
            seen += len(msgs)
            await msgs[-1].ack()
        rates[f"consume_{how}"] = len(records) / (time.perf_counter() - started)
        await (sub.unsubscribe() if how == "fetch" else sub.stop())
    return rates


async def publish_all(nc: Client, records: list[bytes]) -> None:
    """As gateways do, with 1000 acks in flight (CALLS declared as the service declares it)."""
    js = nc.jetstream(timeout=30)
    await ensure_stream(js, CALLS_STREAM)
    for first in range(0, len(records), BATCH):
        chunk = records[first : first + BATCH]
        await asyncio.gather(
            *(
                js.publish(recorded_subject(json.loads(r)["account_id"]), r, headers=_msg_id(r))
                for r in chunk
            )
        )


def _msg_id(record: bytes) -> dict[str, str]:
    return {"Nats-Msg-Id": json.loads(record)["call_id"]}


def rows_of(records: list[bytes]) -> list[tuple[Any, ...]]:
    return [
        tuple(call_row(seq, _subject(r), json.loads(r))[c] for c in COLUMNS)
        for seq, r in enumerate(records, 1)
    ]


def _subject(record: bytes) -> str:
    return recorded_subject(json.loads(record)["account_id"])


async def raw_insert(url: str, rows: list[tuple[Any, ...]]) -> dict[str, float]:
    """(b): the driver alone, into the calllog table with its indexes, 1000 rows a commit."""
    engine = make_engine(url)
    await create_schema(engine)
    await engine.dispose()
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.split("///", 1)[1])
        conn.execute("PRAGMA journal_mode=WAL")  # as the calllog service runs it
        marks = ", ".join("?" * len(COLUMNS))
        sql = f"INSERT INTO calllog_calls ({', '.join(COLUMNS)}) VALUES ({marks})"
        started = time.perf_counter()
        for first in range(0, len(rows), BATCH):
            with conn:
                conn.executemany(sql, rows[first : first + BATCH])
        elapsed = time.perf_counter() - started
        conn.close()
        return {"executemany": len(rows) / elapsed}
    pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    half = len(rows) // 2
    started = time.perf_counter()
    for first in range(0, half, BATCH):
        await pg.copy_records_to_table("calllog_calls", records=rows[first : first + BATCH])
    copy = half / (time.perf_counter() - started)
    marks = ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 1))
    sql = f"INSERT INTO calllog_calls ({', '.join(COLUMNS)}) VALUES ({marks})"
    started = time.perf_counter()
    for first in range(half, len(rows), BATCH):
        async with pg.transaction():
            await pg.executemany(sql, rows[first : first + BATCH])
    many = (len(rows) - half) / (time.perf_counter() - started)
    await pg.close()
    return {"copy": copy, "executemany": many}


def service(nats_url: str, db_url: str, log: Path) -> subprocess.Popen[bytes]:
    settings = {
        "KEYLEDGER_NATS_URL": nats_url,
        "KEYLEDGER_DB_URL": db_url,
        "KEYLEDGER_LOG_LEVEL": "WARNING",
        "KEYLEDGER_CALLS_RETENTION_EVERY_SECONDS": "3600",
    }
    return run_service("services.calllog.app:create_app", settings, log)


def _running(proc: subprocess.Popen[bytes], deadline: float, log: Path) -> None:
    if proc.poll() is not None or time.monotonic() > deadline:
        raise RuntimeError(f"calllog service stopped or stuck; log:\n{log.read_text()}")


async def service_ingest(nats_url: str, db_url: str, total: int, log: Path) -> float:
    """(c): from the first applied batch to the last, timed on the rows (the partitions
    each keep a tracking row of their own)."""
    proc = service(nats_url, db_url, log)
    engine = make_engine(db_url)
    try:
        deadline = time.monotonic() + 600
        while (first := await row_count(engine)) == 0:
            _running(proc, deadline, log)
            await asyncio.sleep(0.005)
        started = time.perf_counter()
        while await row_count(engine) < total:
            _running(proc, deadline, log)
            await asyncio.sleep(0.01)
        return (total - first) / (time.perf_counter() - started)
    finally:
        proc.terminate()
        proc.wait(30)
        await engine.dispose()


def big_rows(total: int, hot: int) -> Iterator[list[tuple[Any, ...]]]:
    """`hot` rows for acct-hot, the rest over 1000 accounts, spread over the last 6 days."""
    rng, now_us = random.Random(2), to_us(datetime.now(UTC))
    span = 6 * 86400 * 1_000_000
    for first in range(0, total, 100_000):
        chunk = []
        for i in range(first, min(first + 100_000, total)):
            account = "acct-hot" if i % max(total // hot, 1) == 0 else f"acct-{i % 1000}"
            row = (f"{i:016x}", account, f"key_{account}", now_us - rng.randrange(span))
            chunk.append(
                (*row, "GET", rng.choice(PATHS), rng.choice(STATUSES), 3.0, "10.0.0.1", AGENT, i)
            )
        yield chunk


async def bulk_load(url: str, total: int, hot: int) -> None:
    """Rows straight into the table, secondary indexes built afterwards (much faster)."""
    engine = make_engine(url)
    await create_schema(engine)
    async with engine.begin() as conn:
        for index in calls.indexes:
            await conn.run_sync(lambda sync, ix=index: ix.drop(sync))
    await engine.dispose()
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.split("///", 1)[1])
        marks = ", ".join("?" * len(COLUMNS))
        for chunk in big_rows(total, hot):
            with conn:
                conn.executemany(f"INSERT INTO calllog_calls VALUES ({marks})", chunk)
        conn.close()
    else:
        pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        for chunk in big_rows(total, hot):
            await pg.copy_records_to_table("calllog_calls", records=chunk, columns=COLUMNS)
        await pg.close()
    engine = make_engine(url)
    async with engine.begin() as conn:
        for index in calls.indexes:
            await conn.run_sync(lambda sync, ix=index: ix.create(sync))
        await conn.exec_driver_sql("ANALYZE")
    await engine.dispose()
    if not url.startswith("sqlite"):  # settle the fresh table, or autovacuum runs mid-figure
        pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        await pg.execute("VACUUM ANALYZE calllog_calls")
        await pg.close()
    assert metadata.tables  # the schema is the service's own


async def query_latency(nc: Client, kinds: dict[str, dict[str, Any]], n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, body in kinds.items():
        data, times = json.dumps(body).encode(), []
        for _ in range(n):
            started = time.perf_counter()
            reply = await nc.request("calls.query.list", data, timeout=10)
            times.append((time.perf_counter() - started) * 1000)
        result = json.loads(reply.data)
        if not (result["ok"] and result["result"]["items"]):
            raise RuntimeError(f"unexpected reply: {result}")
        out[name] = {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}
    return out


async def run_db(kind: str, opts: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    say(f"== {kind}: {opts.calls:,} calls; list query over {opts.rows:,} rows")
    result: dict[str, Any] = {"db": kind}
    with Server(tmp / f"nats-{kind}", sync=opts.sync) as server:
        nc = await nats.connect(server.url)
        if kind == "postgres" and opts.replicas > 1 and not opts.query_only:
            # another seed: (a) publishes its records under their call ids within CALLS'
            # duplicate window, which would drop the ones (d) published already
            scale = make_records(opts.scale_calls, seed=2)
            result["d"] = await scale_figures(
                opts, tmp, server.url, server.pid, nc, lambda: publish_all(nc, scale)
            )
            await reset(nc)
        if opts.scale_only:
            await nc.close()
            return result
        if not opts.query_only:
            await ingest_figures(kind, opts, tmp, server.url, nc, result)
            # the query table is bulk-loaded: its service must not rebuild it from the
            # ingest's calls (a projector fills a database behind its durable from CALLS)
            await reset(nc)
        async with pg_database(kind, opts.pg_dsn, tmp / "big.db") as url:
            started = time.perf_counter()
            await bulk_load(url, opts.rows, opts.rows // 10)
            say(f"  loaded {opts.rows:,} rows in {time.perf_counter() - started:.0f} s")
            proc = service(server.url, url, tmp / f"{kind}-q.log")
            try:
                await _healthy(nc)
                page = await nc.request(
                    "calls.query.list", b'{"account_id":"acct-hot","limit":100}', timeout=10
                )
                deep = json.loads(page.data)["result"]["next_cursor"]
                kinds = {
                    "first page (100)": {"account_id": "acct-hot", "limit": 100},
                    "next page (cursor)": {"account_id": "acct-hot", "limit": 100, "cursor": deep},
                    "by key": {"account_id": "acct-hot", "key_id": "key_acct-hot", "limit": 100},
                    "status 4xx": {"account_id": "acct-hot", "status": "4xx", "limit": 100},
                }
                result["query"] = await query_latency(nc, kinds, opts.queries)
            finally:
                proc.terminate()
                proc.wait(30)
        for name, q in result["query"].items():
            verdict = "OK" if q["p99_ms"] <= QUERY_P99_MS else "SLOW"
            say(f"  list {name:<20} p50 {q['p50_ms']:.2f} ms  p99 {q['p99_ms']:.2f} ms [{verdict}]")
        await nc.close()
    return result


async def ingest_figures(
    kind: str,
    opts: argparse.Namespace,
    tmp: Path,
    url_nats: str,
    nc: Client,
    result: dict[str, Any],
) -> None:
    """(a), (b) and (c) for one database."""
    records = make_records(opts.calls)
    result["a"] = await bare_nats(nc, records)
    a = result["a"]
    say(
        f"  (a) bare nats-py: publish {a['publish']:,.0f}/s; consume with fetch() "
        f"{a['consume_fetch']:,.0f}/s, with a callback pull {a['consume_callback']:,.0f}/s"
    )
    async with pg_database(kind, opts.pg_dsn, tmp / "raw.db") as url:
        result["b"] = await raw_insert(url, rows_of(records))
    say(f"  (b) raw insert: {', '.join(f'{k} {v:,.0f}/s' for k, v in result['b'].items())}")
    async with pg_database(kind, opts.pg_dsn, tmp / "ingest.db") as url:
        log = tmp / f"{kind}-c.log"
        result["c"] = await service_ingest(url_nats, url, len(records), log)
    # (a) as the issue words it: nats-py's pull consumer (fetch); (b): the driver's best
    # insert (COPY on PostgreSQL). Strict: (a) with the callback pull the service itself uses.
    best_insert = max(result["b"].values())
    slower = min(a["consume_fetch"], best_insert)
    strict = min(max(a["consume_fetch"], a["consume_callback"]), best_insert)
    result["ratio"], result["ratio_strict"] = result["c"] / slower, result["c"] / strict
    verdict = "OK" if result["ratio"] >= INGEST_TARGET else "BELOW TARGET"
    say(
        f"  (c) calllog service: {result['c']:,.0f}/s = {result['ratio']:.2f} x min(a, b) "
        f"= {slower:,.0f}/s [{verdict}]; {result['ratio_strict']:.2f} x {strict:,.0f}/s "
        "with (a) as the callback pull"
    )


async def _healthy(nc: Client) -> None:
    for _ in range(1200):
        try:
            await nc.request("calls.query.health", b"{}", timeout=0.5)
            return
        except (nats.errors.Error, TimeoutError):
            await asyncio.sleep(0.1)
    raise RuntimeError("calllog service not ready")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200_000, help="records for (a), (b), (c)")
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows for the query figure")
    parser.add_argument("--queries", type=int, default=1000, help="requests per query kind")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--sync", action="store_true", help="nats-server sync_interval: always")
    parser.add_argument("--query-only", action="store_true", help="skip (a), (b) and (c)")
    parser.add_argument("--quick", action="store_true", help="20k calls, 200k rows, 200 queries")
    parser.add_argument("--replicas", type=int, default=2, help="(d): replicas against 1")
    parser.add_argument("--scale-calls", type=int, default=300_000, help="records for (d)")
    parser.add_argument("--scale-only", action="store_true", help="only (d), on PostgreSQL")
    add_pg_dsn(parser)
    opts = parser.parse_args()
    if opts.quick:
        opts.calls, opts.rows, opts.queries = 20_000, 200_000, 200
        opts.scale_calls = 150_000
    if opts.scale_only:
        opts.db = "postgres"
    opts.calls = min(max(opts.calls, BATCH), 10_000_000)
    opts.rows = min(max(opts.rows, 10_000), 50_000_000)
    opts.queries = min(max(opts.queries, 10), 100_000)
    results = []
    with tempfile.TemporaryDirectory(prefix="keyledger-calls-") as tmp:
        for kind in opts.db.split(","):
            results.append(asyncio.run(run_db(kind.strip(), opts, Path(tmp))))
    say(json.dumps(results, separators=(",", ":")))


if __name__ == "__main__":
    main()
