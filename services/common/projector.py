"""A durable pull loop feeding a projection in batches, acknowledged only after commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from nats.errors import ConnectionClosedError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from services.common.delivery import delivery, unbroken
from services.common.eventlog import Stored, envelope
from services.common.pull import BatchPull
from services.common.streams import stream_sequence

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

    from services.common.turn import Turn

log = logging.getLogger(__name__)

Apply = Callable[[list[tuple[int, Any]]], Awaitable[object]]
Decode = Callable[[str, bytes], Any]
Position = Callable[[], Awaitable[int]]
FETCH_SECONDS = 1.0


class Projector:
    """Bare nats-py pull loop: FastStream's batch pull waits for a full batch and costs ~5x.

    A projection must see its stream in order and without gaps: its tracking row skips
    anything at or below the last sequence applied. Replicas share one durable consumer,
    whose server hands messages to every waiting pull request in turn; so a replica takes
    the `turn` (services.common.turn) before it asks for a batch and keeps it until the batch
    is applied and acknowledged, and only one replica ever has messages in hand. AckPolicy
    ALL lets one ack cover the batch; a failed batch is not acknowledged, so it comes back
    after ack_wait. Messages a replica died with (fetched, never acknowledged) are read from
    the stream by the next replica whose batch starts beyond them.
    """

    def __init__(
        self,
        js: JetStreamContext,
        nc: Client,
        *,
        stream: str,
        subject: str,
        durable: str,
        apply: Apply,
        position: Position,
        turn: Turn,
        batch: int = 500,
        ack_wait: float = 30.0,
        envelopes: bool = False,
        decode: Decode | None = None,
        sole: bool = False,
    ) -> None:
        """position: the projection's last applied stream sequence (its tracking row);
        envelopes: the stream holds hash-chained events (KEYS, NOTIFY), so a message that
        is not an event of the account its subject names reaches `apply` as None, reported
        once (services.common.eventlog);
        decode: (subject, data) -> what `apply` gets per message, for streams whose
        messages are checked against their subject otherwise (CALLS); by default the JSON
        object (None if the data is not one);
        sole: one replica at a time pulls from the durable (a partition under a lease), so
        at start it also applies from the stream what the durable delivered and no one
        acknowledged (a replica died with it in hand) rather than wait ack_wait, and a
        batch that carries on the consumer's sequence is applied without a gap check."""
        self._js, self._nc = js, nc
        self._envelopes = envelopes
        self._custom = decode
        self._stream, self._subject, self._durable = stream, subject, durable
        self._apply, self._position, self._turn = apply, position, turn
        self._batch = batch
        self._ack_wait = ack_wait
        self._task: asyncio.Task[None] | None = None
        self._sub: BatchPull | None = None
        self._stopping = False
        self._sole = sole
        self._next_cseq: int | None = None  # sole: the consumer sequence after our last ack

    async def start(self) -> None:
        config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.ALL,
            max_ack_pending=self._batch,
            ack_wait=self._ack_wait,
        )
        sub = self._sub = await self._batch_pull(config)
        self._task = asyncio.create_task(self._run(sub), name=f"projector-{self._durable}")

    async def _batch_pull(self, config: api.ConsumerConfig) -> BatchPull:
        """Create the durable as pull_subscribe would (an existing one is kept as it is).

        nats-py's own fetch() is not used: it leaves a pull request open when it returns,
        which would hand messages to this replica after its turn, and costs ~5x more per
        message (services/common/pull.py)."""
        try:
            await self._js.consumer_info(self._stream, self._durable)
        except NotFoundError:
            config.durable_name, config.filter_subject = self._durable, self._subject
            await self._js.add_consumer(self._stream, config)
        pull = BatchPull(self._nc, self._stream, self._durable)
        await pull.start()
        return pull

    async def stop(self, finish: float = 0.0) -> None:
        """finish: seconds the batch in hand may take to be applied before the loop is
        cancelled (a partition handed to another replica): a transaction cancelled half way
        can leave its connection holding locks the next owner waits on."""
        # a fetch can swallow a cancellation, so the loop also checks a flag
        self._stopping = True
        if self._task is not None and finish > 0:
            await asyncio.wait([self._task], timeout=finish)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._sub is not None:
            await self._sub.stop()  # a projector stopped and started again leaves no inbox
            self._sub = None
        self._turn.close()

    async def _run(self, sub: BatchPull) -> None:
        await self._catch_up()
        while not self._stopping:
            try:
                async with self._turn.hold():
                    pause = await self._take_turn(sub)
            except (NatsTimeout, TimeoutError):
                continue
            except ConnectionClosedError:
                return
            except NatsError as exc:  # e.g. while reconnecting after a NATS restart
                log.warning("%s: fetch failed (%r); retrying", self._durable, exc)
                pause = 0.2
            except Exception:
                # the database is away (the turn lives there too): nothing was acknowledged
                log.exception("%s: projection failed; its batch will be redelivered", self._durable)
                pause = 1.0
            if pause:
                await asyncio.sleep(pause)  # outside the turn: another replica may do better

    async def _catch_up(self) -> None:
        """Fill a database that is behind the durable from the stream.

        A restored database, or a new one (say after a move to PostgreSQL), would otherwise
        stay without what the durable has already had acknowledged: it never comes again.
        """
        while not self._stopping:
            try:
                info = await self._js.consumer_info(self._stream, self._durable)
                floor = info.ack_floor.stream_seq if info.ack_floor else 0
                if self._sole and info.delivered:
                    floor = max(floor, info.delivered.stream_seq or 0)
                async with self._turn.hold():
                    position = await self._position()
                    if position >= floor:
                        return
                    found = await self._read(position + 1, floor + 1, self._batch)
                    if not found:  # nothing left up to the floor (expired or purged)
                        return
                    log.warning(
                        "%s: the database is behind the consumer; applied %d..%d from the stream",
                        self._durable,
                        found[0].stream_seq,
                        found[-1].stream_seq,
                    )
                    await self._apply([self._decode(stored) for stored in found])
            except Exception:
                log.exception("%s: catching up from the stream failed; retrying", self._durable)
                await asyncio.sleep(1.0)

    async def _take_turn(self, sub: BatchPull) -> float:
        """Fetch, apply and acknowledge one batch; the pause before the next turn."""
        msgs = await sub.fetch(self._batch, timeout=FETCH_SECONDS)
        if not msgs:  # fetch can return nothing at all around a reconnect
            return 0.0
        fresh, through = await self._in_order(msgs)
        self._next_cseq = None  # known again once this batch is applied and acknowledged
        if fresh:
            batch = [self._decode(stored) for stored in fresh]
            try:
                await self._apply(batch)
            except Exception:
                log.exception(
                    "%s: batch ending at %d failed; it will be redelivered",
                    self._durable,
                    batch[-1][0],
                )
                return 1.0
        if through is None:
            return 0.0
        try:
            await through.ack()
            if self._sole:
                self._next_cseq = delivery(through).consumer_seq + 1
        except NatsError as exc:
            # applied and tracked: the redelivery after ack_wait is skipped as already seen
            log.warning("%s: ack of %d lost (%r)", self._durable, stream_sequence(through), exc)
        return 0.0

    async def _in_order(self, msgs: list[Msg]) -> tuple[list[Stored], Msg | None]:
        """What to apply after the tracking row, in order and complete; and the message whose
        ack (AckPolicy ALL) covers all of it, None if nothing may be acknowledged.

        Redeliveries come in the order their ack_wait ran out, so the batch is sorted. A
        message the stream holds between the tracking row and this batch was delivered to a
        replica that died with it unacknowledged: it is read from the stream here rather
        than waited for, or the tracking row would pass it by for good.
        """
        msgs = sorted(msgs, key=stream_sequence)
        if self._sole and unbroken(msgs, delivery(msgs[0]).consumer_seq):
            return await self._after_gap(msgs)
        expected = await self._position() + 1
        fresh: list[Stored] = []
        for msg in msgs:
            seq = stream_sequence(msg)
            if seq < expected:  # applied already (a redelivery), or twice in this batch
                continue
            if seq > expected:  # a gap, or only a hole in the stream (expired, purged)
                filled = await self._read(expected, seq, self._batch)
                if filled:
                    log.warning(
                        "%s: %d messages from sequence %d were delivered to a replica that "
                        "stopped before acknowledging them; read them from the stream",
                        self._durable,
                        len(filled),
                        expected,
                    )
                fresh += filled
                if len(filled) == self._batch:
                    # more than a batch is missing: apply this much, acknowledge nothing
                    # (what was fetched comes back after ack_wait) and read on next turn
                    return fresh, None
            fresh.append(Stored(seq, msg.subject, msg.data))
            expected = seq + 1
        return fresh, msgs[-1]

    async def _after_gap(self, msgs: list[Msg]) -> tuple[list[Stored], Msg | None]:
        """A sole consumer's batch of first deliveries in an unbroken consumer sequence: a
        message can be missing only before it, and none when it carries on from our last
        acknowledged batch (a filtered consumer's messages lie far apart in the stream, so
        the general check would read the stream once per message)."""
        got = [Stored(stream_sequence(m), m.subject, m.data) for m in msgs]
        if unbroken(msgs, self._next_cseq):
            return got, msgs[-1]
        expected = await self._position() + 1
        filled = await self._read(expected, got[0].stream_seq, self._batch)
        if len(filled) == self._batch:  # more than a batch missing: as in _in_order
            return filled, None
        if filled:
            log.warning(
                "%s: %d messages from sequence %d were delivered to a replica that stopped "
                "before acknowledging them; read them from the stream",
                self._durable,
                len(filled),
                expected,
            )
        return filled + [stored for stored in got if stored.stream_seq >= expected], msgs[-1]

    async def _read(self, first: int, beyond: int, most: int) -> list[Stored]:
        """Up to `most` of the stream's messages for our subject in [first, beyond)."""
        found: list[Stored] = []
        seq = first
        while seq < beyond and len(found) < most:
            try:
                msg = await self._js.get_msg(
                    self._stream, seq=seq, subject=self._subject, next=True
                )
            except NotFoundError:
                break
            if msg.seq is None or msg.seq >= beyond:
                break
            found.append(Stored(msg.seq, msg.subject or self._subject, msg.data or b""))
            seq = msg.seq + 1
        return found

    def _decode(self, stored: Stored) -> tuple[int, Any]:
        if self._custom is not None:
            return stored.stream_seq, self._custom(stored.subject, stored.data)
        if self._envelopes:
            return stored.stream_seq, envelope(self._stream, stored, f"projection {self._durable}")
        return stored.stream_seq, _json(stored.data)


def _json(data: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
