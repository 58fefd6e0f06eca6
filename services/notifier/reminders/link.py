"""One sender's mail session: opened on first use, kept across chunks, reopened after a break."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from services.notifier.reminders.errors import DeliveryError

if TYPE_CHECKING:
    from services.notifier.reminders.mailer import Send, Transport
    from services.notifier.reminders.mime import Mail


class Link:
    """`fresh`: opened and nothing accepted since, so a break now means the server, not a
    dropped connection, is the trouble."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._stack: contextlib.AsyncExitStack | None = None
        self._send: Send | None = None
        self.fresh = False

    @property
    def is_open(self) -> bool:
        return self._send is not None

    async def connect(self) -> None:
        """Open a session; DeliveryError (broken) if the server cannot be reached."""
        stack = contextlib.AsyncExitStack()
        self._send = await stack.enter_async_context(self._transport.session())
        self._stack, self.fresh = stack, True

    async def send(self, mail: Mail) -> None:
        """Hand one mail over; a DeliveryError that broke the session closes it."""
        assert self._send is not None, "connect() first"
        try:
            await self._send(mail)
        except DeliveryError as err:
            if err.broken:
                await self.close()
            raise
        self.fresh = False

    async def close(self) -> None:
        stack, self._stack, self._send = self._stack, None, None
        if stack is not None:
            await stack.aclose()
