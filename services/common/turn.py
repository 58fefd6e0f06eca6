"""Whose turn it is: projection replicas sharing a durable consumer take one batch at a time."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import text

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncEngine

FILE_POLL_SECONDS = 0.02


class Turn(Protocol):
    """Held while one replica fetches, applies and acknowledges a batch."""

    def hold(self) -> AbstractAsyncContextManager[None]: ...

    def close(self) -> None: ...


def turn_for(engine: AsyncEngine, name: str) -> Turn:
    """The lock the replicas of projection `name` share, in the database they share.

    PostgreSQL: a transaction-scoped advisory lock, so a replica that dies or loses its
    connection releases it at once. SQLite: an flock on a file beside the database (the
    replicas are on one machine); SQLite's own write lock would stall every other writer.
    """
    if engine.dialect.name == "postgresql":
        return _AdvisoryLock(engine, name)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        return _FileLock(Path(f"{database}.{name}.lock"))
    return _Alone()  # a private database: no other process can project into it


def alone() -> Turn:
    """A turn nobody else shares: for a consumer no other replica pulls from at once."""
    return _Alone()


class _AdvisoryLock:
    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self._engine = engine
        digest = hashlib.sha256(f"keyledger-projection-{name}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        # the lock lives as long as this connection's transaction: leaving the block rolls it
        # back (nothing was written on it) and so releases the lock
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._key})
            yield

    def close(self) -> None:
        return None


class _FileLock:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fd = self._fd
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # polled: a blocking flock would hold a thread that cannot be cancelled
                await asyncio.sleep(FILE_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Alone:
    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        yield

    def close(self) -> None:
        return None
