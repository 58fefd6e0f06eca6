"""The calllog service's own NATS connection: the CALLS stream, the projection, health."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from contracts import replies
from contracts.calllog import (
    PROJECTION_DURABLE,
    SERVICE_QUEUE,
    partition_transform,
    query_subject,
    transform_partitions,
)
from services.calllog import projection
from services.calllog.partitioned import Partitioned
from services.common.inboxes import answerable
from services.common.requests import wait_routable
from services.common.responder import BareResponder, Handle
from services.common.runtime import ServiceRuntime

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
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
        takeover_seconds: float = 10.0,
    ) -> None:
        super().__init__(
            nats_url=nats_url, nats_options=nats_options, replicas=replicas, engine=engine
        )
        # the stream is a parameter here (benchmarks and tests size CALLS), a constant elsewhere
        self._stream, self._batch = stream, batch
        self._takeover = takeover_seconds
        self.partitioned: Partitioned | None = None

    async def start(self) -> None:
        js = await self._connect(self._stream)
        partitions = await self._partitions(js)
        if partitions is not None:
            self.partitioned = Partitioned(
                js,
                self.connection,
                stream=self._stream.name,
                partitions=partitions,
                engine=self._engine,
                batch=self._batch,
                takeover_seconds=self._takeover,
                replicas=self._replicas,
            )
            await self.partitioned.start()
            return
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

    async def _partitions(self, js: JetStreamContext) -> int | None:
        """The stream's partition count, which wins over the setting (it is fixed for the
        stream's life); None: a CALLS from before partitions, consumed as it always was
        (one durable, replicas taking turns) until an operator adds the transform (README)."""
        config = (await js.stream_info(self._stream.name)).config
        have = config.subject_transform
        found = transform_partitions(have.dest if have else None)
        wanted = transform_partitions(self._stream.transform[1] if self._stream.transform else None)
        if found is None and wanted is not None:
            source, destination = partition_transform(wanted)
            log.warning(
                "calllog: stream %s has no partitions, so replicas take turns on one durable; "
                "to partition it, add the subject transform %s -> %s (README, services/calllog)",
                self._stream.name,
                source,
                destination,
            )
        elif found is not None and found != wanted:
            log.warning(
                "calllog: stream %s has %d partitions (%s asked for): the stream's count is kept",
                self._stream.name,
                found,
                wanted,
            )
        return found

    async def _stop_parts(self) -> None:
        if self.partitioned is not None:
            await self.partitioned.stop()

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
        part = self.partitioned
        try:
            if part is None:
                seq = await projection.position(self._engine)
            else:
                seq = await part.applied_through()
            refused = await projection.refusals(self._engine)
        except Exception as exc:
            log.error("calllog: health check cannot read the database: %s", type(exc).__name__)
            await msg.respond(replies.error(replies.ErrorCode.UNAVAILABLE, "database unreachable"))
            return
        # pid: tells replicas apart, as every replica answers in the same queue group;
        # stream_seq: every record up to it is in the database
        state = {"service": "calllog", "pid": os.getpid(), "stream_seq": seq, "refused": refused}
        if part is not None:
            state["partitions"] = part.leases.owned  # the ones this replica consumes
            state["member"] = part.leases.member
        await msg.respond(replies.ok(state))
