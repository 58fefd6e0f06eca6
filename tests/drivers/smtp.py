"""A real SMTP server on loopback (aiosmtpd) that records what it accepts, for notifier tests."""

from __future__ import annotations

import asyncio
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from keyledger.local.server import free_port


class SmtpSink:
    """Accepts mail on 127.0.0.1:`port`; can refuse recipients or stall before RCPT answers.
    Offers SMTPUTF8 (non-ASCII addresses) unless `smtputf8` is False, 8BITMIME unless
    `eight_bit` is False."""

    def __init__(
        self, port: int | None = None, *, smtputf8: bool = True, eight_bit: bool = True
    ) -> None:
        self.port = port or free_port()
        self.smtputf8 = smtputf8
        self.eight_bit = eight_bit  # False: no 8BITMIME (aiosmtpd offers it unless it decodes)
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TOs) per message
        self.raw: list[bytes] = []  # each message as it came over the wire
        self.refuse: dict[str, str] = {}  # address -> SMTP reply, e.g. "550 no such user"
        self.stall = threading.Event()  # while set, RCPT waits (a delivery in flight)
        self.stalled = threading.Event()  # set once a client is waiting in RCPT
        self.hang_up_at: set[int] = set()  # MAIL commands (1-based) answered by hanging up
        self.mail_commands = 0
        self.peers: set[tuple[str, int]] = set()  # one per client connection that sent MAIL
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> SmtpSink:
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            enable_SMTPUTF8=self.smtputf8,
            decode_data=not self.eight_bit,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def ids(self) -> list[str]:
        with self._lock:
            return [str(m["Message-ID"]) for m in self.messages]

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self._lock:
            self.mail_commands += 1
            self.peers.add(session.peer)
            hang_up = self.mail_commands in self.hang_up_at
        if hang_up:  # a server dropping the connection in the middle of a batch
            server.transport.close()
            return "421 closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        while self.stall.is_set():
            self.stalled.set()
            await asyncio.sleep(0.01)
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(parsed)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.raw.append(envelope.original_content)
        return "250 Message accepted"
