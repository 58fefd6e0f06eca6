"""Composition root of the notifier: builds its parts and serves its subjects; no logic here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from faststream import FastStream
from faststream.specification import AsyncAPI

from contracts.envelope import Envelope
from contracts.notifier import (
    NOTIFY_STREAM,
    SERVICE_QUEUE,
    MarkRead,
    ReminderSent,
    RemindersQuery,
    SidebarQuery,
    Sweep,
    command_subject,
    event_subject,
    query_subject,
)
from services.common.checkpoints import CheckpointPublisher, signing_key
from services.common.connect import connect_options, make_broker
from services.common.heads import StreamHeads
from services.common.requests import wait_routable
from services.common.schedule import Periodic
from services.common.serve import serve
from services.notifier.domain import RetryPolicy
from services.notifier.handlers import Commands
from services.notifier.queries import HealthQuery, Queries
from services.notifier.reminders.claims import new_token
from services.notifier.reminders.delivery import Deliverer
from services.notifier.reminders.mailer import Transport, transport_for
from services.notifier.reminders.publisher import Log, Publisher
from services.notifier.reminders.sweep import Sweeper
from services.notifier.runtime import Runtime
from services.notifier.settings import NotifierSettings
from services.notifier.store import create_schema, notifier_engine

if TYPE_CHECKING:
    from collections.abc import Callable

    from faststream.nats import NatsBroker
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("keyledger.notifier")


def clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Deps:
    """What a caller may replace (tests); left None, a part is built from the settings."""

    clock: Callable[[], datetime] = clock
    new_id: Callable[[], str] = new_token  # lease owners of sweeps and senders
    engine: AsyncEngine | None = None  # disposed of at shutdown like the notifier's own
    transport: Transport | None = None  # where reminder mail goes
    events: Log | None = None  # where ReminderSent goes; None: NOTIFY, once connected


def create_app(settings: NotifierSettings | None = None, deps: Deps | None = None) -> FastStream:
    settings, deps = settings or NotifierSettings(), deps or Deps()
    logging.basicConfig(level=settings.log_level)
    broker = make_broker(settings)
    app = FastStream(broker, specification=AsyncAPI(title="keyledger notifier", version="0.1.0"))
    engine = deps.engine or notifier_engine(settings.db_url)
    transport = deps.transport or transport_for(settings)
    publisher = Publisher(engine, deps.clock, log=deps.events)
    sweeper = _sweeper(settings, deps, engine, transport, publisher)
    runtime = Runtime(
        nats_url=settings.nats_url,
        nats_options=connect_options(settings),
        replicas=settings.stream_replicas,
        engine=engine,
        publisher=publisher,
    )
    checkpoints = _checkpoints(settings)
    schedule = Periodic(sweeper.scheduled, settings.sweep_interval_seconds, job_id="reminder-sweep")
    subjects = [query_subject(n) for n in ("sidebar", "reminders", "health")] + [
        command_subject(v) for v in ("mark_read", "sweep")
    ]

    @app.on_startup
    async def warm_up() -> None:
        await create_schema(engine)
        await runtime.start()

    @app.after_startup
    async def announce() -> None:
        await wait_routable(runtime.connection, subjects)
        schedule.start()
        if checkpoints is not None:
            checkpoints.bind(runtime.connection.jetstream())
            checkpoints.start()
        log.info("notifier: mail goes to %s", transport.describe())
        if settings.outbox is not None and deps.transport is None:
            log.info("notifier: no SMTP host set (KEYLEDGER_SMTP_HOST): appending to the mbox")
        log.info("notifier ready on %s", settings.nats_url)

    @app.on_shutdown
    async def close() -> None:
        schedule.stop()
        if checkpoints is not None:
            checkpoints.stop()
        await runtime.stop()
        await engine.dispose()

    queries = Queries(
        engine=engine,
        clock=deps.clock,
        settle=runtime.settle,
        following=lambda: runtime.following,
        mail=transport.describe(),
        time_travel=settings.allow_time_travel,
    )
    commands = Commands(
        engine=engine,
        sweeper=sweeper,
        clock=deps.clock,
        settle=runtime.settle,
        allow_time_travel=settings.allow_time_travel,
    )
    _serve(broker, queries, commands)
    # documentation only: the sweep appends these itself, chained per account
    broker.publisher(
        event_subject("{account_id}"),
        title=event_subject("<account_id>"),
        description="ReminderSent, one per delivered reminder, on the NOTIFY stream",
        schema=Envelope[ReminderSent],
    )
    return app


def _serve(broker: NatsBroker, queries: Queries, commands: Commands) -> None:
    """Every request/reply subject, parsed strictly, answered in the one reply shape."""
    q = SERVICE_QUEUE
    serve(broker, query_subject("sidebar"), SidebarQuery, queries.sidebar, queue=q, name="sidebar")
    serve(
        broker, query_subject("reminders"), RemindersQuery, queries.reminders, queue=q,
        name="reminders",
    )  # fmt: skip
    serve(
        broker, query_subject("health"), HealthQuery, queries.health, queue=q, name="health",
        empty_body=b"{}",  # probes send nothing
    )  # fmt: skip
    serve(
        broker, command_subject("mark_read"), MarkRead, commands.mark_read, queue=q,
        name="mark_read",
    )  # fmt: skip
    serve(broker, command_subject("sweep"), Sweep, commands.sweep, queue=q, name="sweep")


def _checkpoints(settings: NotifierSettings) -> CheckpointPublisher | None:
    """Checkpoints of NOTIFY, from heads this replica reads off the stream itself (the
    publisher's own heads are a cache of the accounts it appended to, not all of them)."""
    if (key := signing_key(settings, "notifier")) is None:
        return None
    heads = StreamHeads(NOTIFY_STREAM, "the notifier's checkpoints")
    publisher = CheckpointPublisher(
        stream=NOTIFY_STREAM.name,
        key=key,
        position=heads.last_seq,
        snapshot=heads.snapshot,
        every_events=settings.checkpoint_every_events,
        every_seconds=settings.checkpoint_every_seconds,
    )
    publisher.on_bind(heads.bind)
    return publisher


def _sweeper(
    settings: NotifierSettings,
    deps: Deps,
    engine: AsyncEngine,
    transport: Transport,
    publisher: Publisher,
) -> Sweeper:
    lease = timedelta(seconds=settings.lease_seconds)
    deliverer = Deliverer(
        engine=engine,
        transport=transport,
        sender=settings.mail_from,
        policy=RetryPolicy(
            settings.retry_base_seconds, settings.retry_max_seconds, settings.max_attempts
        ),
        lease=lease,
        send_timeout=timedelta(seconds=settings.smtp_timeout),
        chunk=settings.delivery_chunk,
        clock=deps.clock,
        senders=1 if settings.outbox else settings.smtp_connections,
        new_id=deps.new_id,
    )
    return Sweeper(
        engine=engine,
        deliverer=deliverer,
        publisher=publisher,
        clock=deps.clock,
        batch=settings.sweep_batch,
        lease=lease,
        new_id=deps.new_id,
    )
