"""The runtime base every service shares: own connection, own stream, one projector, stop order."""

from __future__ import annotations

from typing import TYPE_CHECKING

import nats

from contracts.connection import Options, servers
from services.common.projector import Apply, Decode, Position, Projector
from services.common.requests import OwnConnection
from services.common.streams import ensure_stream
from services.common.turn import turn_for

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from sqlalchemy.ext.asyncio import AsyncEngine

    from contracts.streams import StreamSpec


class ServiceRuntime(OwnConnection):
    """A connection of the service's own (so its work never queues behind FastStream's
    command handling on the broker's socket), the stream it owns, and its projector.

    Subclasses add their own parts in `start` and stop them in `_stop_parts`, which runs
    after the projector stops and before the connection closes.
    """

    connection_name = "runtime"

    def __init__(
        self, *, nats_url: str, nats_options: Options | None, replicas: int, engine: AsyncEngine
    ) -> None:
        self._url, self._replicas, self._engine = nats_url, replicas, engine
        self._options = nats_options or {}
        self._projector: Projector | None = None

    async def _connect(self, stream: StreamSpec) -> JetStreamContext:
        """Connect with the service's options and declare the stream this service owns."""
        self._nc = await nats.connect(
            servers(self._url), name=self.connection_name, **self._options
        )
        js = self._nc.jetstream()
        await ensure_stream(js, stream, self._replicas)
        return js

    def _new_projector(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        subject: str,
        durable: str,
        apply: Apply,
        position: Position,
        batch: int = 500,
        envelopes: bool = False,
        decode: Decode | None = None,
    ) -> Projector:
        """A projector on this connection whose turn is held under its durable's name."""
        return Projector(
            js,
            self.connection,
            stream=stream,
            subject=subject,
            durable=durable,
            apply=apply,
            position=position,
            turn=turn_for(self._engine, durable),
            batch=batch,
            envelopes=envelopes,
            decode=decode,
        )

    async def _stop_parts(self) -> None:
        """Stop what the subclass started besides the projector (nothing by default)."""

    async def stop(self) -> None:
        if self._projector is not None:
            await self._projector.stop()
        await self._stop_parts()
        if self._nc is not None:
            # close, not drain: draining waits on the pull subscription's cancelled fetch
            await self._nc.flush()
            await self._nc.close()
