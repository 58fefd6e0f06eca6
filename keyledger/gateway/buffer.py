"""A bounded in-memory queue between serving a call and its record reaching the CALLS stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from contracts.calllog import CallRecorded

log = logging.getLogger("keyledger.gateway")
Publish = Callable[[CallRecorded], Awaitable[object]]

DEFAULT_CAPACITY = 10_000  # ~3 MB of records: about a minute of a busy gateway
IN_FLIGHT = 64
WARN_EVERY = 10.0


class CallBuffer:
    """Records wait here until CALLS acknowledges them; nothing is lost while NATS is away
    unless more than `capacity` calls pile up, and then the oldest go first, counted and
    logged (at most one warning per 10 s).

    Order does not matter: every record carries its own time and the log sorts by it.
    """

    def __init__(
        self,
        publish: Publish,
        *,
        capacity: int = DEFAULT_CAPACITY,
        in_flight: int = IN_FLIGHT,
        backoff: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        self._publish = publish
        self.capacity = capacity
        self._in_flight = in_flight
        self._backoff = backoff
        self._queue: deque[CallRecorded] = deque()
        self._sending = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._warned_at = 0.0
        self.published = 0
        self.dropped = 0
        self.retries = 0

    @property
    def pending(self) -> int:
        """Records not yet acknowledged by the stream."""
        return len(self._queue) + self._sending

    def put(self, call: CallRecorded) -> None:
        """Never blocks and never raises: the response has been sent already."""
        self._queue.append(call)
        self._trim()
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="keyledger-call-buffer")

    async def flush(self, seconds: float) -> bool:
        """Wait until every record is acknowledged; False if some are still waiting."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), seconds)
        return self.pending == 0

    async def stop(self, seconds: float = 5.0) -> None:
        """Give waiting records `seconds` to go out, then stop (saying how many are lost)."""
        if self._task is None:
            return
        if not await self.flush(seconds):
            log.warning("gateway stopping: %d call records were never recorded", self.pending)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(self._in_flight, len(self._queue)))]
            self._sending = len(batch)
            outcomes = await asyncio.gather(
                *(self._publish(call) for call in batch), return_exceptions=True
            )
            failed = [
                c for c, out in zip(batch, outcomes, strict=True) if isinstance(out, Exception)
            ]
            self._sending = 0
            self.published += len(batch) - len(failed)
            if not failed:
                delay = self._backoff[0]
                continue
            # back to the front, so the oldest go out first once NATS answers again
            self._queue.extendleft(reversed(failed))
            self._trim()
            self.retries += 1
            self._warn(f"cannot record calls ({_first_error(outcomes)}); retrying in {delay:.2f}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    def _trim(self) -> None:
        over = self.pending - self.capacity
        for _ in range(min(max(over, 0), len(self._queue))):
            self._queue.popleft()
            self.dropped += 1
        if over > 0:
            self._warn(f"call buffer full ({self.capacity}): dropped the oldest records")

    def _warn(self, what: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("%s; %d waiting, %d dropped so far", what, self.pending, self.dropped)


def _first_error(outcomes: list[object]) -> str:
    for out in outcomes:
        if isinstance(out, Exception):
            return str(out) or type(out).__name__
    return "unknown error"
