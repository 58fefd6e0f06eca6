"""The keys service's own NATS connection: replay, live follow, verify responder, audit feed."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from datetime import datetime

import nats
from nats.aio.client import Client
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.connection import Options, servers
from contracts.keys import ALL_EVENTS, KEYS_STREAM
from services.common.projector import Projector
from services.common.requests import OwnConnection
from services.common.streams import ensure_stream
from services.common.turn import turn_for
from services.keys import audit
from services.keys.eventstore import EventStore
from services.keys.follower import Follower
from services.keys.registry import Registry
from services.keys.verify import VerifyResponder

log = logging.getLogger("keyledger.keys")


class Runtime(OwnConnection):
    """Everything that must be warm before the broker subscribes to commands.

    It holds a connection of its own, so keys.verify never queues behind FastStream's
    command handling on the broker's socket.
    """

    def __init__(
        self,
        *,
        nats_url: str,
        nats_options: Options | None = None,
        replicas: int,
        engine: AsyncEngine,
        registry: Registry,
        events: EventStore,
        clock: Callable[[], datetime],
    ) -> None:
        self._url, self._replicas = nats_url, replicas
        self._options = nats_options or {}
        self._engine, self._registry, self._events, self._clock = engine, registry, events, clock
        self._nc: Client | None = None
        self._follower: Follower | None = None
        self._projector: Projector | None = None

    async def start(self) -> None:
        nc = self._nc = await nats.connect(servers(self._url), name="keys-runtime", **self._options)
        js = nc.jetstream()
        await ensure_stream(js, KEYS_STREAM, self._replicas)
        self._events.bind(js)
        self._follower = Follower(js, self._registry)
        # replay allocates millions of long-lived objects: collecting while they pile up only
        # burns time, and freezing them afterwards keeps later collections short
        gc.disable()
        try:
            await self._follower.start()
            await self._follower.caught_up()
        finally:
            gc.enable()
            gc.freeze()
        await VerifyResponder(nc, self._registry, self._clock).start()
        self._projector = Projector(
            js,
            nc,
            stream=KEYS_STREAM.name,
            subject=ALL_EVENTS,
            durable=audit.PROJECTION,
            apply=lambda batch: audit.project(self._engine, batch),
            position=lambda: audit.position(self._engine),
            turn=turn_for(self._engine, audit.PROJECTION),
            envelopes=True,
        )
        await self._projector.start()
        log.info(
            "keys: %d accounts loaded up to stream sequence %d",
            len(self._registry.accounts),
            self._follower.position,
        )

    async def stop(self) -> None:
        if self._projector:
            await self._projector.stop()
        if self._follower:
            await self._follower.stop()
        if self._nc:
            # close, not drain: draining waits on the pull subscription's cancelled fetch
            await self._nc.flush()
            await self._nc.close()
