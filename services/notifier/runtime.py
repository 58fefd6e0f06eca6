"""The notifier's own NATS connection: NOTIFY declared, KEYS followed, subjects probed."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.connection import Options, servers
from contracts.keys import ALL_EVENTS, KEYS_STREAM
from contracts.notifier import KEYS_DURABLE, NOTIFY_STREAM
from services.common.projector import Projector
from services.common.requests import OwnConnection
from services.common.streams import ensure_stream
from services.common.turn import turn_for
from services.notifier import projection
from services.notifier.publisher import Publisher

log = logging.getLogger("keyledger.notifier")
BIND_RETRY_SECONDS = 1.0
KEYS_BATCH = 5000  # events per fetch and transaction: 1000 catches up ~20% slower (bench)


class Runtime(OwnConnection):
    """Declares NOTIFY (its producer), then binds the KEYS durable without touching KEYS."""

    def __init__(
        self,
        *,
        nats_url: str,
        replicas: int,
        engine: AsyncEngine,
        publisher: Publisher,
        nats_options: Options | None = None,
    ) -> None:
        self._url, self._replicas, self._engine = nats_url, replicas, engine
        self._options = nats_options or {}
        self._publisher = publisher
        self._nc: Client | None = None
        self._projector: Projector | None = None
        self._binding: asyncio.Task[None] | None = None

    @property
    def following(self) -> bool:
        return self._projector is not None

    async def start(self) -> None:
        nc = self._nc = await nats.connect(
            servers(self._url), name="notifier-runtime", **self._options
        )
        js = nc.jetstream()
        await ensure_stream(js, NOTIFY_STREAM, self._replicas)
        self._publisher.bind(js)
        # KEYS belongs to the keys service, which may start after us: wait for it in the
        # background, so the notifier's own subjects answer meanwhile
        self._binding = asyncio.create_task(self._bind_keys(js), name="notifier-bind-keys")

    async def _bind_keys(self, js: JetStreamContext) -> None:
        told = False
        while True:
            projector = Projector(
                js,
                self.connection,
                stream=KEYS_STREAM.name,
                subject=ALL_EVENTS,
                durable=KEYS_DURABLE,
                apply=lambda batch: projection.project(self._engine, batch),
                position=lambda: projection.position(self._engine),
                turn=turn_for(self._engine, KEYS_DURABLE),
                batch=KEYS_BATCH,
                envelopes=True,
            )
            try:
                await projector.start()
            except NotFoundError:
                if not told:
                    log.info("notifier: waiting for the KEYS stream (is the keys service up?)")
                    told = True
                await asyncio.sleep(BIND_RETRY_SECONDS)
                continue
            self._projector = projector
            log.info("notifier: following KEYS with durable %s", KEYS_DURABLE)
            return

    async def settle(self, seconds: float = 3.0) -> None:
        """Wait (a little) until the projection holds everything KEYS held when called, so a
        sweep or a query right after `key generate` already knows the key."""
        if self._nc is None:
            return
        try:
            last = (await self._nc.jetstream().stream_info(KEYS_STREAM.name)).state.last_seq
        except (NotFoundError, NatsTimeoutError):
            return
        deadline = asyncio.get_running_loop().time() + seconds
        # still binding (KEYS was created after we started) counts as behind too
        while self._projector is None or await projection.position(self._engine) < last:
            if asyncio.get_running_loop().time() > deadline:
                log.warning("notifier: projection still behind KEYS sequence %d", last)
                return
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._binding is not None:
            self._binding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._binding
        if self._projector is not None:
            await self._projector.stop()
        if self._nc is not None:
            # close, not drain: draining waits on the pull subscription's cancelled fetch
            await self._nc.flush()
            await self._nc.close()
