"""Delivered emails recorded in groups: one transaction for all that went out meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from services.notifier.reminders import claims

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("keyledger.notifier")
GATHER_SECONDS = 0.02  # how long an accepted email may wait for others to share its transaction
GATHER_MAX = 100


class Writer:
    """Write transactions of one delivery run. On SQLite they queue on an asyncio lock: the
    file takes one writer at a time anyway, and a connection that finds it locked sleeps in
    SQLite's busy handler (1, 2, 5, 10 ... ms steps) long after the lock came free."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock or contextlib.nullcontext(), self.engine.begin() as conn:
            yield conn


class Recorder:
    """Group commit of delivered claims. A transaction a mail cost more than the mail itself;
    here the senders go on while accepted emails gather for up to GATHER_SECONDS (or
    GATHER_MAX emails, or the end of the run), then one transaction
    records them all. An accepted email is recorded within about 20 ms plus a transaction:
    that is the window in which a crash makes the next sweep send it again (same Message-ID).
    """

    def __init__(self, writer: Writer, clock: Callable[[], datetime]) -> None:
        self._writer, self._clock = writer, clock
        self._waiting: list[tuple[str, str]] = []  # (lease owner, reminder id)
        self._writing: list[tuple[str, str]] = []
        self._task: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()  # record now: enough gathered
        self.delivered = 0

    def add(self, token: str, reminder_id: str) -> None:
        """Record this email as delivered, soon; raises the failure of an earlier record."""
        if self._task is not None and self._task.done():
            task, self._task = self._task, None
            task.result()
        self._waiting.append((token, reminder_id))
        if len(self._waiting) >= GATHER_MAX:
            self._hurry.set()
        if self._task is None:
            self._task = asyncio.create_task(self._drain())

    def unrecorded(self, token: str) -> list[str]:
        """This owner's accepted emails not yet recorded: their leases must be renewed too."""
        return [rid for owner, rid in (*self._writing, *self._waiting) if owner == token]

    async def flush(self) -> None:
        """Wait until everything added is recorded (raises a failure to record)."""
        while self._task is not None:
            self._hurry.set()
            task = self._task
            try:
                await task
            finally:
                if self._task is task:
                    self._task = None

    async def _drain(self) -> None:
        while self._waiting:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GATHER_SECONDS):
                    await self._hurry.wait()
            self._hurry.clear()
            self._writing, self._waiting = self._waiting, []
            await self._record(self._writing)
            self._writing = []

    async def _record(self, items: list[tuple[str, str]]) -> None:
        async with self._writer.begin() as conn:
            done = await claims.delivered(conn, items, self._clock())
        self.delivered += done
        if done < len(items):  # cannot happen while leases outlast sends; say so loudly if it does
            log.error("notifier: %d leases lost during delivery", len(items) - done)
