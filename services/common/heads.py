"""Every account's head on an event stream, read incrementally: what a checkpoint signs."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import nats.errors
from nats.js import api

from contracts.envelope import GENESIS_HASH
from contracts.stored import chain_problem
from services.common.checkpoints import Snapshot
from services.common.eventlog import Stored, envelope, skipped
from services.common.streams import stream_sequence

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from contracts.streams import StreamSpec

READ_TIMEOUT = 10.0


class StreamHeads:
    """Folds a stream's envelopes into (sequence, hash) per account, by the rule every
    reader applies: an event moves its account's head only when it continues the chain."""

    def __init__(self, spec: StreamSpec, reader: str) -> None:
        self._spec, self._reader = spec, reader
        self._subject = spec.subjects[0]
        self.heads: dict[str, tuple[int, str]] = {}
        self.position = 0
        self._js: JetStreamContext | None = None
        self._lock = asyncio.Lock()

    def bind(self, js: JetStreamContext) -> None:
        self._js = js

    async def last_seq(self) -> int:
        if self._js is None:
            return 0
        return int((await self._js.stream_info(self._spec.name)).state.last_seq)

    async def snapshot(self) -> Snapshot:
        """Read what was appended since the last call, then every head as of the stream's end."""
        async with self._lock:
            await self._catch_up(await self.last_seq())
            return Snapshot(self.position, dict(self.heads))

    def fold(self, stored: Stored) -> None:
        raw = envelope(self._spec.name, stored, self._reader)
        if raw is not None:
            account = raw["stream_id"]
            last = self.heads.get(account, (0, GENESIS_HASH))
            why = chain_problem(raw, *last)
            if why is None:
                self.heads[account] = (raw["sequence"], raw["hash"])
            else:
                skipped(self._spec.name, stored.stream_seq, stored.subject, why, self._reader)
        self.position = max(self.position, stored.stream_seq)

    async def _catch_up(self, target: int) -> None:
        if self._js is None or target <= self.position:
            return
        sub = await self._js.subscribe(
            self._subject,
            stream=self._spec.name,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            config=api.ConsumerConfig(opt_start_seq=self.position + 1),
        )
        try:
            while self.position < target:
                try:
                    msg = await sub.next_msg(timeout=READ_TIMEOUT)
                except nats.errors.TimeoutError:
                    raise TimeoutError(f"{self._spec.name} stopped delivering") from None
                self.fold(Stored(stream_sequence(msg), msg.subject, msg.data))
                if msg.metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
