"""The notifier's own NATS connection: NOTIFY declared, KEYS followed, subjects probed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NotFoundError

from contracts.keys import ALL_EVENTS, KEYS_STREAM
from contracts.notifier import KEYS_DURABLE, NOTIFY_STREAM
from services.common.runtime import ServiceRuntime
from services.notifier import projection

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from sqlalchemy.ext.asyncio import AsyncEngine

    from contracts.connection import Options
    from services.notifier.reminders.publisher import Publisher

log = logging.getLogger("keyledger.notifier")
BIND_RETRY_SECONDS = 1.0
KEYS_BATCH = 5000  # events per fetch and transaction: 1000 catches up ~20% slower (bench)


class Runtime(ServiceRuntime):
    """Declares NOTIFY (its producer), then binds the KEYS durable without touching KEYS."""

    connection_name = "notifier-runtime"

    def __init__(
        self,
        *,
        nats_url: str,
        replicas: int,
        engine: AsyncEngine,
        publisher: Publisher,
        nats_options: Options | None = None,
    ) -> None:
        super().__init__(
            nats_url=nats_url, nats_options=nats_options, replicas=replicas, engine=engine
        )
        self._publisher = publisher
        self._binding: asyncio.Task[None] | None = None

    @property
    def following(self) -> bool:
        return self._projector is not None

    async def start(self) -> None:
        js = await self._connect(NOTIFY_STREAM)
        self._publisher.bind(js)
        # unlike the others, its projector reads a stream another service owns (KEYS), which
        # may start after us: bind in the background, so the notifier's own subjects answer
        # meanwhile
        self._binding = asyncio.create_task(self._bind_keys(js), name="notifier-bind-keys")

    async def _bind_keys(self, js: JetStreamContext) -> None:
        told = False
        while True:
            projector = self._new_projector(
                js,
                stream=KEYS_STREAM.name,
                subject=ALL_EVENTS,
                durable=KEYS_DURABLE,
                apply=lambda batch: projection.project(self._engine, batch),
                position=lambda: projection.position(self._engine),
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
        # the binding task may still be creating the projector: end it before the base
        # stops the projector, or a projector bound during shutdown would be left running
        if self._binding is not None:
            self._binding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._binding
        await super().stop()
