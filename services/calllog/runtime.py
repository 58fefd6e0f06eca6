"""The calllog service's own NATS connection: the CALLS stream, the projection, health."""

from __future__ import annotations

import logging
import os

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import replies
from contracts.calllog import PROJECTION_DURABLE, SERVICE_QUEUE, query_subject
from contracts.connection import Options, servers
from contracts.streams import StreamSpec
from services.calllog import projection
from services.calllog.responder import Handle, Responder
from services.common.inboxes import answerable
from services.common.projector import Projector
from services.common.requests import OwnConnection, wait_routable
from services.common.streams import ensure_stream
from services.common.turn import turn_for

log = logging.getLogger("keyledger.calllog")


class Runtime(OwnConnection):
    """Declares CALLS (the call-log side owns it) and feeds the projection from it."""

    def __init__(
        self,
        *,
        nats_url: str,
        stream: StreamSpec,
        replicas: int,
        engine: AsyncEngine,
        batch: int,
        nats_options: Options | None = None,
    ) -> None:
        self._url, self._stream, self._replicas = nats_url, stream, replicas
        self._options = nats_options or {}
        self._engine, self._batch = engine, batch
        self._nc: Client | None = None
        self._projector: Projector | None = None

    async def start(self) -> None:
        nc = self._nc = await nats.connect(
            servers(self._url), name="calllog-runtime", **self._options
        )
        js = nc.jetstream()
        await ensure_stream(js, self._stream, self._replicas)
        self._projector = Projector(
            js,
            nc,
            stream=self._stream.name,
            subject=self._stream.subjects[0],
            durable=PROJECTION_DURABLE,
            apply=lambda batch: projection.project(self._engine, batch),
            position=lambda: projection.position(self._engine),
            turn=turn_for(self._engine, PROJECTION_DURABLE),
            batch=self._batch,
            decode=projection.record,
        )
        await self._projector.start()

    async def serve(self, subject: str, handle: Handle, workers: int) -> None:
        """Answer `subject` on this connection, outside FastStream (see responder.py)."""
        assert self._nc is not None
        await Responder(self._nc, subject, SERVICE_QUEUE, handle, workers).start()

    async def announce(self, subjects: list[str]) -> None:
        """Answer health only once every query subject is routable (a flushed SUB is not
        always routable at once under load), so `keyledger up` never reports early."""
        await wait_routable(self.connection, subjects)
        assert self._nc is not None
        await self._nc.subscribe(query_subject("health"), queue=SERVICE_QUEUE, cb=self._health)
        await wait_routable(self.connection, [query_subject("health")])

    async def _health(self, msg: Msg) -> None:
        if not answerable(msg.reply):
            return
        try:
            seq = await projection.position(self._engine)
            refused = await projection.refusals(self._engine)
        except Exception as exc:
            log.error("calllog: health check cannot read the database: %s", type(exc).__name__)
            await msg.respond(replies.error(replies.ErrorCode.UNAVAILABLE, "database unreachable"))
            return
        # pid: tells replicas apart, as every replica answers in the same queue group
        state = {"service": "calllog", "pid": os.getpid(), "stream_seq": seq, "refused": refused}
        await msg.respond(replies.ok(state))

    async def stop(self) -> None:
        if self._projector:
            await self._projector.stop()
        if self._nc:
            # close, not drain: draining waits on the pull subscription's cancelled fetch
            await self._nc.flush()
            await self._nc.close()
