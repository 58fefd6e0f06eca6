"""Composition root of the keys service: builds its parts, serves its subjects, starts it."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from faststream import FastStream
from faststream.specification import AsyncAPI

from contracts.keys import (
    COMMANDS,
    KEYS_STREAM,
    SERVICE_QUEUE,
    AccountsQuery,
    AuditQuery,
    Command,
    KeyQuery,
    command_subject,
    query_subject,
)
from services.common.checkpoints import CheckpointPublisher, signing_key
from services.common.connect import connect_options, make_broker
from services.common.requests import wait_routable
from services.common.serve import Headers, serve
from services.common.sql import make_engine
from services.keys import queries
from services.keys import runtime as keyruntime
from services.keys.eventstore import EventStore
from services.keys.handlers import Deps, Events, Secrets, handle
from services.keys.registry import Registry
from services.keys.runtime import Runtime
from services.keys.settings import KeysSettings
from services.keys.snapshot import Policy
from services.keys.store import create_schema
from services.keys.vault import Vault, load_master_key
from services.keys.via import via_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from faststream.nats import NatsBroker
    from pydantic import BaseModel
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("keyledger.keys")
# every subject the broker serves, in the order the service waits for each to be routable
SERVED = [command_subject(v) for v in COMMANDS] + [
    query_subject(q) for q in ("audit", "key", "accounts", "health")
]


@dataclass(frozen=True)
class Overrides:
    """Parts to use instead of the real ones (None: built from the settings), the way tests
    run the handlers on fakes. A vault other than `Vault` must need no master key; an engine
    given here is its giver's to dispose."""

    clock: Callable[[], datetime] | None = None
    new_id: Callable[[], str] | None = None
    events: Events | None = None
    vault: Secrets | None = None
    engine: AsyncEngine | None = None


def create_app(settings: KeysSettings | None = None, deps: Overrides | None = None) -> FastStream:
    settings = settings or KeysSettings()
    given = deps or Overrides()
    logging.basicConfig(level=settings.log_level)
    broker = make_broker(settings)
    app = FastStream(broker, specification=AsyncAPI(title="keyledger keys", version="0.1.0"))
    engine = given.engine if given.engine is not None else make_engine(settings.db_url)
    vault = given.vault if given.vault is not None else Vault(engine)
    events = given.events if given.events is not None else EventStore(KEYS_STREAM)
    clock = given.clock or _utc_now
    parts = Deps(
        registry=Registry(), events=events, vault=vault, clock=clock, new_id=given.new_id or _new_id
    )
    checkpoints = None
    if (key := signing_key(settings, "keys")) is not None:
        checkpoints = CheckpointPublisher(
            stream=KEYS_STREAM.name,
            key=key,
            position=partial(keyruntime.position, parts.registry),
            snapshot=partial(keyruntime.snapshot, parts.registry),
            every_events=settings.checkpoint_every_events,
            every_seconds=settings.checkpoint_every_seconds,
        )
    runtime = Runtime(
        nats_url=settings.nats_url,
        nats_options=connect_options(settings),
        replicas=settings.stream_replicas,
        engine=engine,
        registry=parts.registry,
        events=events if isinstance(events, EventStore) else None,
        clock=clock,
        checkpoints=checkpoints,
        snapshots=Policy(settings.snapshot_every_seconds, settings.snapshot_every_events)
        if settings.snapshot
        else None,
    )

    @app.on_startup
    async def warm_up() -> None:
        # before the broker subscribes: the registry must hold the whole stream first
        if isinstance(vault, Vault):
            secret = settings.master_key.get_secret_value() if settings.master_key else None
            vault.unlock(load_master_key(secret, settings.master_key_file))
        await create_schema(engine)
        await runtime.start()

    @app.after_startup
    async def announce() -> None:
        await wait_routable(runtime.connection, SERVED)
        log.info("keys service ready on %s", settings.nats_url)

    @app.on_shutdown
    async def close() -> None:
        await runtime.stop()
        if given.engine is None:
            await engine.dispose()

    _serve(broker, parts, engine, settings.command_workers)
    return app


def _serve(broker: NatsBroker, deps: Deps, engine: AsyncEngine, workers: int) -> None:
    """Every subject the broker answers, each through serve() on the service's queue group."""
    for verb, model in COMMANDS.items():
        description = (
            f"{model.__name__} (JSON schema: `keyledger contracts export`); "
            "replies with contracts.replies.Reply"
        )
        serve(
            broker,
            command_subject(verb),
            model,
            partial(_command, deps),
            queue=SERVICE_QUEUE,
            name=verb,
            workers=workers,
            description=description,
        )
    serve(
        broker,
        query_subject("audit"),
        AuditQuery,
        lambda query, _: queries.audit(engine, query),
        queue=SERVICE_QUEUE,
        name="audit",
    )
    serve(
        broker,
        query_subject("key"),
        KeyQuery,
        lambda query, _: queries.key(deps, query),
        queue=SERVICE_QUEUE,
        name="key",
    )
    serve(
        broker,
        query_subject("accounts"),
        AccountsQuery,
        lambda query, _: queries.accounts(deps.registry, query),
        queue=SERVICE_QUEUE,
        name="accounts",
    )
    serve(
        broker,
        query_subject("health"),
        queries.HealthProbe,
        lambda _probe, _: queries.health(deps.registry),
        queue=SERVICE_QUEUE,
        name="health",
        description="any JSON object or nothing; replies with the service, its pid and its "
        "stream sequence",
        empty_body=b"{}",
    )


async def _command(deps: Deps, command: Command, headers: Headers) -> BaseModel:
    # via: the frontend account nats-server vouches for in the request's headers
    return await handle(command, deps, via_of(headers))  # type: ignore[arg-type]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return uuid.uuid4().hex
