"""CALLS consumed by partition: one projector per partition this replica holds a lease on."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from nats.js.errors import NotFoundError

from contracts.calllog import (
    LEASES_BUCKET,
    PROJECTION_DURABLE,
    PUBLISHED,
    partition_durable,
    partition_subject,
)
from services.calllog import projection
from services.calllog.leases import Leases
from services.common.eventlog import Stored
from services.common.projector import FETCH_SECONDS, Projector
from services.common.turn import alone, turn_for

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("keyledger.calllog")
# a partition given up finishes its batch first: a fetch waits up to FETCH_SECONDS
FINISH_SECONDS = FETCH_SECONDS + 4.0


class Partitioned:
    """The partitioned path: no turn between replicas, each projects the partitions it
    leases (services/calllog/leases.py) into their own tracking rows.

    Records stored before CALLS had partitions (calls.recorded.<account>, the single
    durable's) are projected first, from the stream after the old tracking row: every one
    of them is older than any partitioned record, so per-account order holds.
    """

    def __init__(
        self,
        js: JetStreamContext,
        nc: Client,
        *,
        stream: str,
        partitions: int,
        engine: AsyncEngine,
        batch: int,
        takeover_seconds: float,
        replicas: int = 1,
    ) -> None:
        self._js, self._nc, self._stream, self._n = js, nc, stream, partitions
        self._engine, self._batch = engine, batch
        self._running: dict[int, Projector] = {}
        self.leases = Leases(
            js,
            bucket=LEASES_BUCKET,
            partitions=partitions,
            takeover_seconds=takeover_seconds,
            gained=self._gained,
            lost=self._lost,
            replicas=replicas,
        )

    async def start(self) -> None:
        await self.drain_legacy()
        await self.leases.start()

    async def stop(self) -> None:
        await self.leases.stop()
        await asyncio.gather(*(self._lost(partition) for partition in list(self._running)))

    async def drain_legacy(self) -> None:
        """Project what CALLS holds under the subjects from before partitions, after the
        single durable's tracking row; two replicas draining at once wait on that row."""
        turn = turn_for(self._engine, PROJECTION_DURABLE)
        try:
            async with turn.hold():
                seq = await projection.position(self._engine) + 1
                while found := await self._read(seq):
                    batch = [(s.stream_seq, (s.subject, s.data)) for s in found]
                    await projection.project(self._engine, batch)
                    log.info("calllog: applied %d records from before partitions", len(batch))
                    seq = found[-1].stream_seq + 1
        finally:
            turn.close()

    async def _read(self, seq: int) -> list[Stored]:
        found: list[Stored] = []
        while len(found) < self._batch:
            try:
                msg = await self._js.get_msg(self._stream, seq=seq, subject=PUBLISHED, next=True)
            except NotFoundError:
                break
            if msg.seq is None:
                break
            found.append(Stored(msg.seq, msg.subject or PUBLISHED, msg.data or b""))
            seq = msg.seq + 1
        return found

    async def _gained(self, partition: int) -> None:
        durable = partition_durable(partition)
        projector = Projector(
            self._js,
            self._nc,
            stream=self._stream,
            subject=partition_subject(partition),
            durable=durable,
            apply=lambda batch: projection.project(self._engine, batch, durable, self._n),
            position=lambda: projection.position(self._engine, durable),
            # no turn: the lease keeps others away and the tracking row is locked per batch
            turn=alone(),
            batch=self._batch,
            decode=projection.record,
            sole=True,
        )
        await projector.start()
        self._running[partition] = projector
        log.info("calllog: consuming partition %d", partition)

    async def _lost(self, partition: int) -> None:
        projector = self._running.pop(partition, None)
        if projector is not None:
            await projector.stop(finish=FINISH_SECONDS)
            log.info("calllog: stopped consuming partition %d", partition)

    async def applied_through(self) -> int:
        """The highest stream sequence up to which every record is in the database: each
        partition's next unapplied record (and the older subjects') bounds it."""
        names = [partition_durable(p) for p in range(self._n)]
        have = await projection.positions(self._engine, [PROJECTION_DURABLE, *names])
        waiting = [(have[PROJECTION_DURABLE], PUBLISHED)]
        waiting += [(have[name], partition_subject(p)) for p, name in enumerate(names)]
        oldest: int | None = None
        for position, subject in waiting:
            try:
                msg = await self._js.get_msg(
                    self._stream, seq=position + 1, subject=subject, next=True
                )
            except NotFoundError:
                continue
            if msg.seq is not None and (oldest is None or msg.seq < oldest):
                oldest = msg.seq
        if oldest is not None:
            return oldest - 1
        return (await self._js.stream_info(self._stream)).state.last_seq
