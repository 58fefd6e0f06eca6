"""Composition root of the keys service: wires NATS, the database and the use cases."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime

from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from contracts import replies
from contracts.keys import (
    COMMANDS,
    KEYS_STREAM,
    SERVICE_QUEUE,
    AuditQuery,
    Command,
    KeyQuery,
    command_subject,
    query_subject,
)
from services.common.connect import connect_options, make_broker
from services.common.requests import parse, respond, wait_routable
from services.common.sql import make_engine
from services.keys import audit
from services.keys.domain import live_key
from services.keys.eventstore import EventStore
from services.keys.handlers import Deps, catch_up, handle
from services.keys.registry import Registry
from services.keys.runtime import Runtime
from services.keys.settings import KeysSettings
from services.keys.store import create_schema
from services.keys.vault import Vault, load_master_key
from services.keys.via import via_of

log = logging.getLogger("keyledger.keys")
AUDIT_BATCH = 500


def create_app(settings: KeysSettings | None = None) -> FastStream:
    settings = settings or KeysSettings()
    logging.basicConfig(level=settings.log_level)
    broker = make_broker(settings)
    app = FastStream(broker, specification=AsyncAPI(title="keyledger keys", version="0.1.0"))
    engine = make_engine(settings.db_url)
    registry = Registry()

    def clock() -> datetime:
        return datetime.now(UTC)

    vault = Vault(engine)
    events = EventStore(KEYS_STREAM)
    deps = Deps(registry=registry, events=events, vault=vault, clock=clock, new_id=_new_id)
    runtime = Runtime(
        nats_url=settings.nats_url,
        nats_options=connect_options(settings),
        replicas=settings.stream_replicas,
        engine=engine,
        registry=registry,
        events=events,
        clock=clock,
    )

    @app.on_startup
    async def warm_up() -> None:
        # before the broker subscribes: the registry must hold the whole stream first
        secret = settings.master_key.get_secret_value() if settings.master_key else None
        vault.unlock(load_master_key(secret, settings.master_key_file))
        await create_schema(engine)
        await runtime.start()

    @app.after_startup
    async def announce() -> None:
        subjects = [command_subject(v) for v in COMMANDS] + [query_subject("audit")]
        subjects.append(query_subject("key"))
        await wait_routable(runtime.connection, [*subjects, query_subject("health")])
        log.info("keys service ready on %s", settings.nats_url)

    @app.on_shutdown
    async def close() -> None:
        await runtime.stop()
        await engine.dispose()

    for verb, model in COMMANDS.items():
        _command_subscriber(broker, verb, model, deps, settings.command_workers)

    @broker.subscriber(query_subject("audit"), queue=SERVICE_QUEUE)
    async def audit_query(msg: NatsMessage) -> bytes:
        async def work() -> BaseModel:
            return await audit.query(engine, parse(AuditQuery, msg.body))

        return await respond("audit", work)

    @broker.subscriber(query_subject("key"), queue=SERVICE_QUEUE)
    async def key_query(msg: NatsMessage) -> bytes:
        async def work() -> BaseModel:
            query = parse(KeyQuery, msg.body)
            # what another replica appended last counts: a rotate naming an older key
            # would only be refused as superseded
            await catch_up(query.account_id, deps)
            return live_key(registry.state(query.account_id))

        return await respond("key", work)

    @broker.subscriber(query_subject("health"), queue=SERVICE_QUEUE)
    async def health() -> bytes:
        # pid: tells replicas apart, as every replica answers in the same queue group
        return replies.ok({"service": "keys", "pid": os.getpid(), "stream_seq": registry.last_seq})

    return app


def _command_subscriber(
    broker: NatsBroker, verb: str, model: type[Command], deps: Deps, workers: int
) -> None:
    @broker.subscriber(
        command_subject(verb),
        queue=SERVICE_QUEUE,
        max_workers=workers,
        title=command_subject(verb),
        description=f"{model.__name__} (JSON schema: `keyledger contracts export`); "
        "replies with contracts.replies.Reply",
    )
    async def command(msg: NatsMessage) -> bytes:
        async def work() -> BaseModel:
            command = parse(model, msg.body)
            return await handle(command, deps, via_of(msg.headers))  # type: ignore[arg-type]

        return await respond(verb, work)


def _new_id() -> str:
    return uuid.uuid4().hex
