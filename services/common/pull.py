"""A callback-driven JetStream pull: a batch gathers in a list, with no await per message."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

GRACE = 0.5  # how long past its expiry a request's end (a status message) may take to arrive


class BatchPull:
    """Pull requests to `$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`, replies to one inbox.

    nats-py's fetch() awaits each message from a queue under its own timeout (~50 us a
    message, half of the call log's ingest time); here the subscription callback appends
    messages to a list and wakes the caller once.

    A fetch returns only when its pull request is over (`no_wait` with `expires`: the
    server waits for the first message, sends what is there and ends the request with a
    status), so no message reaches this replica after its turn (services.common.turn). A
    message arriving after a fetch gave up anyway waits in the list for the next one.
    """

    def __init__(self, nc: Client, stream: str, durable: str) -> None:
        self._nc = nc
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._ready: list[Msg] = []
        self._want = 0
        self._ended = False
        self._wake = asyncio.Event()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_msg)

    async def stop(self) -> None:
        if self._sub is not None and not self._nc.is_closed:
            await self._sub.unsubscribe()
        self._sub = None

    async def _on_msg(self, msg: Msg) -> None:
        if msg.headers and msg.headers.get("Status"):
            self._ended = True  # 404 no messages, 408 request expired, 409 ...: stop waiting
        else:
            self._ready.append(msg)
        self._wake.set()

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:  # noqa: ASYNC109 (as nats-py)
        """Up to `batch` messages as delivered; [] when none came within `timeout`."""
        if not self._ready:
            self._want, self._ended = batch, False
            request = {"batch": batch, "expires": int(timeout * 1e9), "no_wait": True}
            await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)
            await self._gather(timeout + GRACE)
        taken, self._ready = self._ready[:batch], self._ready[batch:]
        return taken

    async def _gather(self, limit: float) -> None:
        """Until the request is over: `want` messages came, or its closing status did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while not self._ended and len(self._ready) < self._want:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                return
