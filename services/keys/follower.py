"""Keeps the in-memory registry current: replays KEYS from the start, then follows it live."""

from __future__ import annotations

import asyncio
import logging

import orjson
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from contracts.keys import KEYS_STREAM
from services.common.streams import stream_sequence
from services.keys.registry import RECENT_COMMANDS, Registry

log = logging.getLogger(__name__)


class Follower:
    """One ordered consumer per replica: gap-free, in order, and it leaves no durable behind."""

    def __init__(self, js: JetStreamContext, registry: Registry) -> None:
        self._js = js
        self._registry = registry
        self.position = 0  # last stream sequence handled, applied or skipped
        self._target = 0
        self._reached_target = asyncio.Event()
        self._sub: JetStreamContext.PushSubscription | None = None

    async def start(self) -> None:
        self._target = (await self._js.stream_info(KEYS_STREAM.name)).state.last_seq
        # only the newest commands can still be retried: older ones need not be remembered
        self._registry.remember_after = self._target - RECENT_COMMANDS
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
        """Wait until everything in the stream when start() was called has been applied."""
        if self.position < self._target:
            await self._reached_target.wait()

    async def _on_message(self, msg: Msg) -> None:
        seq = stream_sequence(msg)
        try:
            self._registry.apply(seq, orjson.loads(msg.data))
        except Exception as exc:  # an event we cannot read must not stop the others
            log.error("skipped unreadable KEYS event at stream sequence %d: %s", seq, exc)
        self.position = seq
        if seq >= self._target:  # waking the waiter per replayed message costs a task switch
            self._reached_target.set()
