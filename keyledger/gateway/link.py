"""A gateway process's link to keyledger: NATS connection, key verification, call buffer."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import nats

from contracts.connection import Credentials, options, servers
from keyledger.client import KeyledgerClient, Unreachable
from keyledger.gateway.buffer import DEFAULT_CAPACITY, CallBuffer

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.client import Client

    from contracts.calllog import CallRecorded

log = logging.getLogger("keyledger.gateway")
RECONNECT_PAUSE = 1.0


async def _quiet(_: Exception) -> None:
    return None  # nats-py logs tracebacks by default; failures are reported where they matter


class Gateway:
    """One gateway process's link to keyledger: a reconnecting NATS connection, key
    verification (only the key's sha-256 leaves the process) and the call buffer."""

    def __init__(
        self,
        nats_url: str,
        *,
        buffer_size: int = DEFAULT_CAPACITY,
        timeout: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        credentials: Credentials | None = None,
    ) -> None:
        """credentials: the `gateway` identity's (keyledger.client.discover_credentials)."""
        self.nats_url = nats_url
        self._credentials = credentials
        self.timeout = timeout
        self.clock = clock
        self.buffer = CallBuffer(self._publish, capacity=buffer_size)
        self._client: KeyledgerClient | None = None
        self._lock = asyncio.Lock()
        self._failed_at = -RECONNECT_PAUSE

    async def start(self) -> None:
        """Start the buffer and try to connect; NATS being down is not fatal (503s, retries)."""
        self.buffer.start()
        try:
            await self.client()
        except Unreachable as exc:
            log.warning("gateway starting without NATS: %s", exc)

    async def stop(self, flush_timeout: float = 5.0) -> None:
        await self.buffer.stop(flush_timeout)
        if self._client is not None:
            await self._client.nc.close()
            self._client = None

    async def client(self) -> KeyledgerClient:
        """The connection, made on first use; once made, nats-py reconnects it forever."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                if time.monotonic() - self._failed_at < RECONNECT_PAUSE:
                    raise Unreachable(f"NATS at {self.nats_url} was unreachable just now")
                self._client = KeyledgerClient(await self._connect(), request_timeout=self.timeout)
        return self._client

    async def _connect(self) -> Client:
        try:
            # -1 retries forever after a disconnect; the first connect is bounded by wait_for
            return await asyncio.wait_for(
                nats.connect(
                    servers(self.nats_url),
                    name="keyledger-gateway",
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.2,
                    connect_timeout=self.timeout,
                    error_cb=_quiet,
                    **options(self._credentials),
                ),
                self.timeout,
            )
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            self._failed_at = time.monotonic()
            raise Unreachable(f"cannot connect to NATS at {self.nats_url}: {exc!r}") from None

    async def verify(self, key: str) -> dict[str, Any]:
        return await (await self.client()).verify(key)

    def record(self, call: CallRecorded) -> None:
        self.buffer.put(call)

    async def _publish(self, call: CallRecorded) -> None:
        await (await self.client()).record_call(call)
