"""Composition root of the notifier: wires NATS, the database, the mailer and the sweep."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from faststream import FastStream
from faststream.nats.annotations import NatsMessage
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from contracts.envelope import Envelope
from contracts.notifier import (
    SERVICE_QUEUE,
    TIME_TRAVEL_DISABLED,
    MarkRead,
    ReminderSent,
    RemindersQuery,
    SidebarQuery,
    Sweep,
    command_subject,
    event_subject,
    query_subject,
)
from services.common.connect import connect_options, make_broker
from services.common.errors import Refused
from services.common.requests import parse, respond, wait_routable
from services.common.schedule import Periodic
from services.notifier import inbox, projection, status
from services.notifier.delivery import Deliverer
from services.notifier.domain import RetryPolicy
from services.notifier.mailer import MboxTransport, SmtpTransport, Transport
from services.notifier.publisher import Publisher
from services.notifier.runtime import Runtime
from services.notifier.settings import NotifierSettings
from services.notifier.store import create_schema, notifier_engine
from services.notifier.sweep import Sweeper

log = logging.getLogger("keyledger.notifier")
CLOCK_SKEW = timedelta(minutes=1)  # an as_of this close to now is not time travel


def clock() -> datetime:
    return datetime.now(UTC)


def make_transport(settings: NotifierSettings) -> Transport:
    if settings.outbox is not None:
        return MboxTransport(settings.outbox)
    assert settings.smtp_host is not None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpTransport(
        host=settings.smtp_host,
        port=settings.smtp_port,
        starttls=settings.smtp_starttls,
        tls=settings.smtp_tls,
        user=settings.smtp_user,
        password=password,
        timeout=settings.smtp_timeout,
    )


def create_app(settings: NotifierSettings | None = None) -> FastStream:
    settings = settings or NotifierSettings()
    logging.basicConfig(level=settings.log_level)
    broker = make_broker(settings)
    app = FastStream(broker, specification=AsyncAPI(title="keyledger notifier", version="0.1.0"))
    engine = notifier_engine(settings.db_url)
    transport = make_transport(settings)
    publisher = Publisher(engine, clock)
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
        clock=clock,
        senders=1 if settings.outbox else settings.smtp_connections,
    )
    sweeper = Sweeper(
        engine=engine,
        deliverer=deliverer,
        publisher=publisher,
        clock=clock,
        batch=settings.sweep_batch,
        lease=lease,
    )
    runtime = Runtime(
        nats_url=settings.nats_url,
        nats_options=connect_options(settings),
        replicas=settings.stream_replicas,
        engine=engine,
        publisher=publisher,
    )
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
        log.info("notifier: mail goes to %s", transport.describe())
        if settings.outbox is not None:
            log.info("notifier: no SMTP host set (KEYLEDGER_SMTP_HOST): appending to the mbox")
        log.info("notifier ready on %s", settings.nats_url)

    @app.on_shutdown
    async def close() -> None:
        schedule.stop()
        await runtime.stop()
        await engine.dispose()

    @broker.subscriber(query_subject("sidebar"), queue=SERVICE_QUEUE)
    async def sidebar(msg: NatsMessage) -> bytes:
        return await respond(
            "sidebar", lambda: inbox.sidebar(engine, parse(SidebarQuery, msg.body))
        )

    @broker.subscriber(command_subject("mark_read"), queue=SERVICE_QUEUE)
    async def mark_read(msg: NatsMessage) -> bytes:
        async def work() -> BaseModel:
            return await inbox.mark_read(engine, parse(MarkRead, msg.body), clock())

        return await respond("mark_read", work)

    @broker.subscriber(query_subject("reminders"), queue=SERVICE_QUEUE)
    async def reminders(msg: NatsMessage) -> bytes:
        async def work() -> BaseModel:
            query = parse(RemindersQuery, msg.body)
            await runtime.settle()
            return await status.reminders_of(engine, query, clock())

        return await respond("reminders", work)

    @broker.subscriber(command_subject("sweep"), queue=SERVICE_QUEUE)
    async def sweep(msg: NatsMessage) -> bytes:
        async def work() -> BaseModel:
            command = parse(Sweep, msg.body)
            future = command.as_of is not None and command.as_of > clock() + CLOCK_SKEW
            if future and not settings.allow_time_travel:
                raise Refused(
                    TIME_TRAVEL_DISABLED,
                    "as_of is in the future; run the notifier with "
                    "KEYLEDGER_ALLOW_TIME_TRAVEL=1 (keyledger up --dev) to allow it",
                )
            await runtime.settle()
            return await sweeper.sweep(command.as_of)

        return await respond("sweep", work)

    @broker.subscriber(query_subject("health"), queue=SERVICE_QUEUE)
    async def health() -> bytes:
        async def work() -> dict[str, Any]:
            return {
                "service": "notifier",
                "pid": os.getpid(),  # tells replicas apart (one queue group answers)
                "stream_seq": await projection.position(engine),
                "following_keys": runtime.following,
                "mail": transport.describe(),
                "time_travel": settings.allow_time_travel,
            }

        return await respond("health", work)

    # documentation only: the sweep appends these itself, chained per account
    broker.publisher(
        event_subject("{account_id}"),
        title=event_subject("<account_id>"),
        description="ReminderSent, one per delivered reminder, on the NOTIFY stream",
        schema=Envelope[ReminderSent],
    )
    return app
