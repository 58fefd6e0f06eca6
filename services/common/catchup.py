"""A one-off read of a stream to its end through a hand-made push consumer: faster than ordered."""

# Why not nats-py's ordered consumer: per message it parses the headers (every event has
# some, none of them needed here), builds a Msg, queues it and switches to the callback's
# task, which together cost more than folding the event. Here the deliveries of its own
# subscription are taken straight from the connection's parser (NATS._process_msg, the
# one hook nats-py has there), everything else on the connection passes through untouched.
# Its guarantees are the ordered consumer's: every message once and in order (the consumer
# sequence must grow by one, else a new consumer resumes after the last one handled), flow
# control answered once the messages before it are handled, and a consumer that went quiet
# (no message, no heartbeat for two beats, as after a nats-server restart) replaced the same
# way. No service may delete a consumer (keyledger.deploy.permissions): the reader stops
# listening, and the server drops the consumer after INACTIVE seconds without interest,
# which also covers a crash.

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from nats.js import api

from services.common.streams import ack_sequences

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.client import Client
    from nats.js import JetStreamContext

    Handle = Callable[[int, str, bytes], None]

log = logging.getLogger("keyledger")
INACTIVE = 5.0  # seconds without interest before the server drops a consumer left behind
_ACK = b"$JS.ACK."


class CatchUp:
    """Hands every message of `stream` (on `subject`) from a position to its end to `handle`."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        stream: str,
        subject: str,
        handle: Handle,
        *,
        heartbeat: float = 1.0,
    ) -> None:
        self._nc, self._js, self._stream, self._subject = nc, js, stream, subject
        self._handle = handle
        self._heartbeat = heartbeat
        self.position = 0  # the last stream sequence handed over
        self.consumers = 0  # how many consumers it took (more than one: it resumed)
        self._until = 0
        self._sid = -1  # the subscription whose deliveries are read here
        self._expected = 1  # the next consumer sequence of the current consumer
        self._activity = 0  # counts deliveries and heartbeats: unchanged means silent
        self._wake = asyncio.Event()
        self._done = False
        self._failed: BaseException | None = None

    async def read(self, from_seq: int, until: int) -> int:
        """Hand over every message from `from_seq` to `until` (the stream's last sequence when
        called) once, in order; the last sequence handed over (from_seq - 1: none).

        It may stop earlier when the consumer reports nothing left (messages the filter
        leaves out at the end) and may go past `until` while the stream grows.
        """
        self.position, self._until, self._done = from_seq - 1, until, until < from_seq
        nc: Any = self._nc
        passed = nc._process_msg
        intercept = self._intercept(passed)
        nc._process_msg = intercept
        try:
            while not self._done:
                sub = await self._nc.subscribe(self._nc.new_inbox())
                self._sid, self._expected = sub._id, 1
                try:
                    if await self._create(sub.subject):
                        await self._watch()
                finally:
                    self._sid = -1  # what the old consumer still sends is ignored from now
                    await sub.unsubscribe()
                if self._failed is not None:
                    raise self._failed
        finally:
            if nc._process_msg is intercept:
                del nc._process_msg  # the class's method again
        return self.position

    def _intercept(self, passed: Callable[..., Any]) -> Callable[..., Any]:
        async def process_msg(
            sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
        ) -> None:
            if sid != self._sid:
                await passed(sid, subject, reply, data, headers)
            elif not self._done:
                try:
                    if reply.startswith(_ACK):  # a message: no coroutine of its own per message
                        self._message(subject, reply, data)
                    else:
                        await self._control(reply, headers)
                except Exception as exc:  # the reader's, not the connection's: read() raises it
                    self._failed = exc
                    self._stop()

        return process_msg

    async def _create(self, deliver: str) -> bool:
        """Start a consumer after the last message handed over; False: try again later."""
        config = api.ConsumerConfig(
            deliver_subject=deliver,  # an inbox: the only subjects a service may listen on
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self.position + 1,
            filter_subject=self._subject,
            ack_policy=api.AckPolicy.NONE,
            max_deliver=1,
            flow_control=True,
            idle_heartbeat=self._heartbeat,
            inactive_threshold=INACTIVE,
            num_replicas=1,
            mem_storage=True,
        )
        try:
            await self._js.add_consumer(self._stream, config)
        except Exception as exc:  # nats-server restarting, JetStream not ready yet: retry
            log.warning("%s catch-up: no consumer yet (%s); retrying", self._stream, exc)
            await asyncio.sleep(self._heartbeat)
            return False
        self.consumers += 1
        return True

    async def _watch(self) -> None:
        """Until done, a gap, or two heartbeats without a message or a heartbeat."""
        while self._sid >= 0 and not self._done:
            seen = self._activity
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), 2 * self._heartbeat)
            except TimeoutError:
                if self._activity == seen:
                    self._resume("no message and no heartbeat for two beats")

    def _message(self, subject: bytes, reply: bytes, data: bytes) -> None:
        self._activity += 1
        stream_seq, consumer_seq, pending = ack_sequences(reply)
        if consumer_seq != self._expected:
            self._resume(f"consumer sequence {consumer_seq} where {self._expected} was due")
            return
        self._expected = consumer_seq + 1
        if stream_seq > self.position:
            self._handle(stream_seq, subject.decode(), data)
            self.position = stream_seq
        if stream_seq >= self._until or pending == 0:
            self._stop()

    async def _control(self, reply: bytes, headers: bytes | None) -> None:
        """A flow-control request (it has a reply subject) or a heartbeat."""
        self._activity += 1
        if reply:  # a flow-control request: everything delivered before it has been handled
            await self._nc.publish(reply.decode())
            return
        # a heartbeat: rare, so nats-py's own header parsing is cheap enough here
        status = await self._nc._process_headers(headers) or {}
        stalled = status.get(api.Header.CONSUMER_STALLED)
        if stalled:  # the consumer waits for a flow-control reply that got lost
            await self._nc.publish(stalled)
        last = status.get(api.Header.LAST_CONSUMER)
        if last is not None and int(last) != self._expected - 1:
            self._resume(f"a heartbeat after consumer sequence {last}, {self._expected - 1} seen")
        elif last is not None and not stalled:  # idle with nothing left: the stream's end
            self._stop()

    def _resume(self, why: str) -> None:
        log.warning(
            "%s catch-up: %s; resuming after stream sequence %d", self._stream, why, self.position
        )
        self._sid = -1
        self._wake.set()

    def _stop(self) -> None:
        self._done = True
        self._wake.set()
