"""The keys service's own NATS connection: replay, live follow, verify responder, audit feed."""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING

from contracts.checkpoints import CHECKPOINTS_STREAM
from contracts.keys import ALL_EVENTS, KEYS_STREAM, SERVICE_QUEUE, VERIFY_SUBJECT
from services.common.checkpoints import Snapshot
from services.common.responder import BareResponder
from services.common.runtime import ServiceRuntime
from services.common.streams import ensure_stream
from services.keys import projection, snapshot_load
from services.keys.follower import Follower, catch_up
from services.keys.snapshot import SnapshotWriter
from services.keys.verify import verify_handle

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from nats.js import JetStreamContext
    from sqlalchemy.ext.asyncio import AsyncEngine

    from contracts.connection import Options
    from services.common.checkpoints import CheckpointPublisher
    from services.keys.eventstore import EventStore
    from services.keys.registry import Registry
    from services.keys.snapshot import Policy

log = logging.getLogger("keyledger.keys")


class Runtime(ServiceRuntime):
    """Everything that must be warm before the broker subscribes to commands.

    It holds a connection of its own, so keys.verify never queues behind FastStream's
    command handling on the broker's socket.
    """

    connection_name = "keys-runtime"

    def __init__(
        self,
        *,
        nats_url: str,
        nats_options: Options | None = None,
        replicas: int,
        engine: AsyncEngine,
        registry: Registry,
        events: EventStore | None,
        clock: Callable[[], datetime],
        checkpoints: CheckpointPublisher | None = None,
        snapshots: Policy | None = None,
    ) -> None:
        super().__init__(
            nats_url=nats_url, nats_options=nats_options, replicas=replicas, engine=engine
        )
        self._registry, self._events, self._clock = registry, events, clock
        self._follower: Follower | None = None
        self._checkpoints = checkpoints
        self._snapshots = snapshots  # None: neither load nor write a registry snapshot
        self._writer: SnapshotWriter | None = None

    async def start(self) -> None:
        js = await self._connect(KEYS_STREAM)
        # the keys service declares CHECKPOINTS too: it is always up before anything checkpoints
        await ensure_stream(js, CHECKPOINTS_STREAM, self._replicas)
        if self._events is not None:  # None: the commands append to a store of their own
            self._events.bind(js)
        follower = self._follower = Follower(js, self._registry)
        writer = None
        if self._snapshots is not None:
            writer = SnapshotWriter(
                self._engine, self._registry, lambda: follower.position, self._snapshots
            )
        # replay allocates millions of long-lived objects: collecting while they pile up only
        # burns time, and freezing them afterwards keeps later collections short
        gc.disable()
        try:
            start = await self._restore(js, writer) if writer else 0
            # the bulk of the stream through a faster one-off reader, then the ordered
            # consumer from where it stopped: it has little or nothing left to read
            reached = await catch_up(self.connection, js, self._registry, start + 1)
            await follower.start(from_seq=reached + 1)
            await follower.caught_up()
            verify = verify_handle(self._registry, self._clock)
            await BareResponder(self.connection, VERIFY_SUBJECT, SERVICE_QUEUE, verify).start()
            if start:  # verification needs none of them; commands start after this
                remember_after = self._registry.remember_after
                rows = await snapshot_load.read_commands(
                    self._engine, remember_after=remember_after
                )
                snapshot_load.restore_commands(self._registry, rows)
        finally:
            gc.enable()
            gc.freeze()
        if writer is not None:
            writer.start()
            self._writer = writer
        self._projector = self._new_projector(
            js,
            stream=KEYS_STREAM.name,
            subject=ALL_EVENTS,
            durable=projection.PROJECTION,
            apply=lambda batch: projection.project(self._engine, batch),
            position=lambda: projection.position(self._engine),
            envelopes=True,
        )
        await self._projector.start()
        if self._checkpoints is not None:
            self._checkpoints.bind(js)
            self._checkpoints.start()
        log.info(
            "keys: %d accounts loaded up to stream sequence %d",
            len(self._registry.accounts),
            self._follower.position,
        )

    async def _restore(self, js: JetStreamContext, writer: SnapshotWriter) -> int:
        """Load the registry snapshot if it is usable; the KEYS position it covers (0: none)."""
        last = (await js.stream_info(KEYS_STREAM.name)).state.last_seq
        stored = await snapshot_load.read(self._engine)
        if stored is None:
            return 0
        if stored.position > last:
            # KEYS was reset or restored from an older backup: the snapshot is of another
            # history, so it goes, and the writer starts a new one after the replay
            log.warning(
                "keys: registry snapshot at stream sequence %d is ahead of KEYS (last %d); "
                "replaying KEYS from the start",
                stored.position,
                last,
            )
            await snapshot_load.clear(self._engine)
            return 0
        try:
            snapshot_load.restore(self._registry, stored)
        except (ValueError, TypeError):
            log.exception("keys: registry snapshot unreadable; replaying KEYS from the start")
            await snapshot_load.clear(self._engine)  # the writer starts anew after the replay
            return 0
        writer.loaded(stored.generation, stored.position)
        log.info(
            "keys: registry snapshot loaded: %d account subjects up to stream sequence %d",
            len(stored.accounts),
            stored.position,
        )
        return stored.position

    async def stop(self) -> None:
        # the last snapshot write goes first: stopping the projector cancels it, and on
        # SQLite a transaction it had open can hold the write lock until that is collected
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None
        await super().stop()

    async def _stop_parts(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.stop()
        if self._follower:
            await self._follower.stop()


async def position(registry: Registry) -> int:
    """How far the registry has got: what a checkpoint would cover now."""
    return registry.last_seq


async def snapshot(registry: Registry) -> Snapshot:
    """Every account's head as of the registry's position, taken in one step (no await)."""
    heads = {a: (state.version, state.last_hash) for a, state in registry.accounts.items()}
    return Snapshot(registry.last_seq, heads)
