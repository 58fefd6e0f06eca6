"""Keeps the in-memory registry current: replays KEYS from the start, then follows it live."""

from __future__ import annotations

import asyncio
import json
import logging

from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from contracts.keys import KEYS_STREAM
from services.keys.registry import Registry

log = logging.getLogger(__name__)


class Follower:
    """One ordered consumer per replica: gap-free, in order, and it leaves no durable behind."""

    def __init__(self, js: JetStreamContext, registry: Registry) -> None:
        self._js = js
        self._registry = registry
        self.position = 0  # last stream sequence handled, applied or skipped
        self._moved = asyncio.Event()
        self._sub: JetStreamContext.PushSubscription | None = None

    async def start(self) -> None:
        self._sub = await self._js.subscribe(
            "keys.events.>",
            stream=KEYS_STREAM.name,
            ordered_consumer=True,
            cb=self._on_message,
            deliver_policy=api.DeliverPolicy.ALL,
        )

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def caught_up(self) -> None:
        """Wait until everything in the stream when this was called has been applied."""
        info = await self._js.stream_info(KEYS_STREAM.name)
        while self.position < info.state.last_seq:
            self._moved.clear()
            await self._moved.wait()

    async def _on_message(self, msg: Msg) -> None:
        seq = stream_sequence(msg)
        try:
            self._registry.apply(seq, json.loads(msg.data))
        except Exception as exc:  # an event we cannot read must not stop the others
            log.error("skipped unreadable KEYS event at stream sequence %d: %s", seq, exc)
        self.position = seq
        self._moved.set()


def stream_sequence(msg: Msg) -> int:
    """The stream sequence from the ack subject: ~8x cheaper than building msg.metadata."""
    tokens = msg.reply.split(".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(tokens[5])
    if len(tokens) >= 11:  # the same with <domain>.<account hash> after ACK (and a token)
        return int(tokens[7])
    return msg.metadata.sequence.stream
