"""Composition root of the calllog service: wires NATS, the database, queries and retention."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from faststream import FastStream
from faststream.nats.annotations import NatsMessage
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from contracts.calllog import (
    CALLS_STREAM,
    SERVICE_QUEUE,
    CallStatsQuery,
    LastUsedQuery,
    ListCalls,
    query_subject,
)
from services.calllog import listing, queries
from services.calllog.retention import retention_job
from services.calllog.runtime import Runtime
from services.calllog.settings import CallLogSettings
from services.calllog.store import create_schema
from services.common.connect import connect_options, make_broker
from services.common.requests import parse, respond
from services.common.schedule import Periodic
from services.common.sql import make_engine, use_wal

log = logging.getLogger("keyledger.calllog")
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: CallLogSettings | None = None, *, clock: Clock | None = None
) -> FastStream:
    settings = settings or CallLogSettings()
    now = clock or _utc_now
    logging.basicConfig(level=settings.log_level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per run
    broker = make_broker(settings)
    app = FastStream(broker, specification=AsyncAPI(title="keyledger calllog", version="0.1.0"))
    engine = make_engine(settings.db_url)
    use_wal(engine)  # list queries read while ingest and retention write; inserts ~15% faster
    keep = settings.calls_retention_seconds
    stream = dataclasses.replace(CALLS_STREAM, max_age_seconds=keep)
    runtime = Runtime(
        nats_url=settings.nats_url,
        nats_options=connect_options(settings),
        stream=stream,
        replicas=settings.stream_replicas,
        engine=engine,
        batch=settings.calls_ingest_batch,
    )
    job = retention_job(engine, now, keep, settings.calls_retention_batch)
    # once at start too: catch up after downtime
    retention = Periodic(
        job, settings.calls_retention_every_seconds, job_id="calllog-retention", run_at_start=True
    )
    workers = settings.calls_query_workers

    async def answer_list(body: bytes) -> bytes:
        async def work() -> dict[str, Any]:
            return await listing.list_calls(engine, parse(ListCalls, body), now(), keep)

        return await respond("list", work)

    @app.on_startup
    async def warm_up() -> None:
        await create_schema(engine)
        await runtime.start()
        await runtime.serve(query_subject("list"), answer_list, workers)

    @app.after_startup
    async def announce() -> None:
        retention.start()
        await runtime.announce([query_subject(name) for name in ("list", "stats", "last_used")])
        log.info("calllog service ready on %s", settings.nats_url)

    @app.on_shutdown
    async def close() -> None:
        retention.stop()
        await runtime.stop()
        await engine.dispose()

    @broker.subscriber(query_subject("stats"), queue=SERVICE_QUEUE, max_workers=workers)
    async def stats(msg: NatsMessage) -> bytes:
        async def work() -> BaseModel:
            return await queries.call_stats(engine, parse(CallStatsQuery, msg.body), now(), keep)

        return await respond("stats", work)

    @broker.subscriber(query_subject("last_used"), queue=SERVICE_QUEUE, max_workers=workers)
    async def last_used(msg: NatsMessage) -> bytes:
        async def work() -> BaseModel:
            return await queries.last_used(engine, parse(LastUsedQuery, msg.body), now(), keep)

        return await respond("last_used", work)

    return app
