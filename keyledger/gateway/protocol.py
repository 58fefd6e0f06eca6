"""uvicorn's h11 protocol with a deadline on the request head, so slow clients are cut off.

    uvicorn keyledger.gateway.example:create_app --factory \
        --http keyledger.gateway.protocol:HeadTimeoutProtocol --no-access-log

uvicorn's only timeout while a request is read, `timeout_keep_alive`, is reset by every byte
received, and an ASGI app (so keyledger.gateway's middleware) is called only once the head
is complete: a client sending its headers a byte at a time holds a connection, a file
descriptor and a slot of `limit_concurrency` for as long as it likes ("slowloris"). This
protocol gives each request head HEAD_TIMEOUT_SECONDS from the moment the connection waits
for it (accepted, or its previous response sent), as Go's ReadHeaderTimeout and nginx's
client_header_timeout do, then answers 408 and closes. Bodies are the app's to time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    import asyncio

HEAD_TIMEOUT_SECONDS = 10.0
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 26\r\n"
    b"connection: close\r\n\r\n"
    b"request head took too long"
)
log = logging.getLogger("keyledger.gateway")


class HeadTimeoutProtocol(H11Protocol):
    """H11Protocol whose request heads must arrive within `head_timeout` seconds."""

    head_timeout: float = HEAD_TIMEOUT_SECONDS
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()  # a kept-alive connection waits for its next head: a fresh deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Armed while the connection waits for a request head (h11's IDLE), else disarmed;
        never restarted by the bytes of the head it is timing."""
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            self._disarm()
        elif self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        # debug only: unauthenticated clients must not be able to flood the log
        log.debug("closed a connection whose request head took over %gs", self.head_timeout)
        # h11 can't send a response before a request: the bytes are written as they are
        self.transport.write(_TIMED_OUT)
        self.transport.close()
