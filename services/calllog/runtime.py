"""The calllog service's own NATS connection: the CALLS stream, the projection, health."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from contracts import replies
from contracts.calllog import PROJECTION_DURABLE, SERVICE_QUEUE, query_subject
from services.calllog import projection
from services.common.inboxes import answerable
from services.common.requests import wait_routable
from services.common.responder import BareResponder, Handle
from services.common.runtime import ServiceRuntime

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from sqlalchemy.ext.asyncio import AsyncEngine

    from contracts.connection import Options
    from contracts.streams import StreamSpec

log = logging.getLogger("keyledger.calllog")


class Runtime(ServiceRuntime):
    """Declares CALLS (the call-log side owns it) and feeds the projection from it."""

    connection_name = "calllog-runtime"

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
        super().__init__(
            nats_url=nats_url, nats_options=nats_options, replicas=replicas, engine=engine
        )
        # the stream is a parameter here (benchmarks and tests size CALLS), a constant elsewhere
        self._stream, self._batch = stream, batch

    async def start(self) -> None:
        js = await self._connect(self._stream)
        self._projector = self._new_projector(
            js,
            stream=self._stream.name,
            subject=self._stream.subjects[0],
            durable=PROJECTION_DURABLE,
            apply=lambda batch: projection.project(self._engine, batch),
            position=lambda: projection.position(self._engine),
            batch=self._batch,
            decode=projection.record,
        )
        await self._projector.start()

    async def serve(self, subject: str, handle: Handle, workers: int) -> None:
        """Answer `subject` on this connection, outside FastStream (see common/responder.py)."""
        responder = BareResponder(self.connection, subject, SERVICE_QUEUE, handle, workers=workers)
        await responder.start()

    async def announce(self, subjects: list[str]) -> None:
        """Answer health only once every query subject is routable (a flushed SUB is not
        always routable at once under load), so `keyledger up` never reports early."""
        await wait_routable(self.connection, subjects)
        await self.connection.subscribe(
            query_subject("health"), queue=SERVICE_QUEUE, cb=self._health
        )
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
