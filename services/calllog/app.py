"""Composition root of the calllog service: wires NATS, the database, queries and retention."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from faststream import FastStream
from faststream.specification import AsyncAPI

from contracts.calllog import (
    SERVICE_QUEUE,
    CallStats,
    CallStatsQuery,
    ClientsQuery,
    KeyClients,
    LastUsed,
    LastUsedQuery,
    calls_stream,
    query_subject,
)
from services.calllog.queries import listing, usage
from services.calllog.retention import retention_job
from services.calllog.runtime import Runtime
from services.calllog.settings import CallLogSettings
from services.calllog.store import create_schema
from services.common.connect import connect_options, make_broker
from services.common.schedule import Periodic
from services.common.serve import Headers, serve
from services.common.sql import make_engine, use_wal

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("keyledger.calllog")
Clock = Callable[[], datetime]
# the query subjects, each routable before health answers
READS = ("list", "stats", "last_used", "clients")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    """What a test or a benchmark may replace. No engine: one from `settings.db_url`."""

    clock: Clock = utc_now
    engine: AsyncEngine | None = None


@dataclass(frozen=True)
class Reads:
    """The read requests bound to the database, the clock and the window."""

    engine: AsyncEngine
    clock: Clock
    keep: float  # retention seconds: the window every query applies itself

    async def list(self, body: bytes) -> bytes:
        return await listing.answer_list(self.engine, body, self.clock(), self.keep)

    async def stats(self, q: CallStatsQuery, _headers: Headers) -> CallStats:
        return await usage.call_stats(self.engine, q, self.clock(), self.keep)

    async def last_used(self, q: LastUsedQuery, _headers: Headers) -> LastUsed:
        return await usage.last_used(self.engine, q, self.clock(), self.keep)

    async def clients(self, q: ClientsQuery, _headers: Headers) -> KeyClients:
        return await usage.key_clients(self.engine, q, self.clock(), self.keep)


def create_app(settings: CallLogSettings | None = None, deps: Deps | None = None) -> FastStream:
    settings = settings or CallLogSettings()
    deps = deps or Deps()
    logging.basicConfig(level=settings.log_level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per run
    broker = make_broker(settings)
    app = FastStream(broker, specification=AsyncAPI(title="keyledger calllog", version="0.1.0"))
    engine = deps.engine or _engine(settings.db_url)
    keep = settings.calls_retention_seconds
    runtime = Runtime(
        nats_url=settings.nats_url,
        nats_options=connect_options(settings),
        stream=calls_stream(keep, settings.calls_partitions),
        replicas=settings.stream_replicas,
        engine=engine,
        batch=settings.calls_ingest_batch,
        takeover_seconds=settings.calls_takeover_seconds,
    )
    job = retention_job(engine, deps.clock, keep, settings.calls_retention_batch)
    # once at start too: catch up after downtime
    retention = Periodic(
        job, settings.calls_retention_every_seconds, job_id="calllog-retention", run_at_start=True
    )
    reads = Reads(engine, deps.clock, keep)
    workers = settings.calls_query_workers

    @app.on_startup
    async def warm_up() -> None:
        await create_schema(engine)
        await runtime.start()
        # list on the bare responder: FastStream's per-message layers were half its latency
        await runtime.serve(query_subject("list"), reads.list, workers)

    @app.after_startup
    async def announce() -> None:
        retention.start()
        await runtime.announce([query_subject(name) for name in READS])
        log.info("calllog service ready on %s", settings.nats_url)

    @app.on_shutdown
    async def close() -> None:
        retention.stop()
        await runtime.stop()
        await engine.dispose()

    # stats, last_used and clients through FastStream (they are in the AsyncAPI document)
    serve(
        broker,
        query_subject("stats"),
        CallStatsQuery,
        reads.stats,
        queue=SERVICE_QUEUE,
        name="stats",
        workers=workers,
    )
    serve(
        broker,
        query_subject("last_used"),
        LastUsedQuery,
        reads.last_used,
        queue=SERVICE_QUEUE,
        name="last_used",
        workers=workers,
    )
    serve(
        broker,
        query_subject("clients"),
        ClientsQuery,
        reads.clients,
        queue=SERVICE_QUEUE,
        name="clients",
        workers=workers,
    )
    return app


def _engine(db_url: str) -> AsyncEngine:
    engine = make_engine(db_url)
    use_wal(engine)  # list queries read while ingest and retention write; inserts ~15% faster
    return engine
