"""Where reminder mail goes: an SMTP server (aiosmtplib), or an mbox file when none is set."""

from __future__ import annotations

import asyncio
import contextlib
import mailbox
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from io import BytesIO
from typing import TYPE_CHECKING, Protocol

import aiosmtplib

if TYPE_CHECKING:
    from pathlib import Path

    from services.notifier.settings import NotifierSettings

Send = Callable[[Message], Awaitable[None]]
LOCK_ATTEMPTS = 200


class DeliveryError(Exception):
    """A message was not accepted. `permanent`: retrying cannot help (a 5xx for this message);
    `broken`: the session is unusable, so the rest of the batch waits for the next sweep."""

    def __init__(self, reason: str, *, permanent: bool = False, broken: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.permanent = permanent
        self.broken = broken


class Transport(Protocol):
    def session(self) -> contextlib.AbstractAsyncContextManager[Send]: ...

    def describe(self) -> str: ...


def classify(exc: BaseException) -> DeliveryError:
    """Only a server's 5xx about this very message is final; everything else is retried."""
    if isinstance(exc, aiosmtplib.SMTPNotSupported):  # no SMTPUTF8: it can never take this one
        return DeliveryError(f"{exc}", permanent=True)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return DeliveryError(f"recipient refused: {text}", permanent=all(c >= 500 for c in codes))
    # authentication and greeting failures are configuration problems: fixable, so retried
    per_message = (
        aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPSenderRefused | aiosmtplib.SMTPDataError
    )
    if isinstance(exc, per_message):
        return DeliveryError(f"{exc.code} {exc.message}", permanent=exc.code >= 500)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"{exc.code} {exc.message}", broken=True)
    if isinstance(exc, OSError | TimeoutError | aiosmtplib.SMTPException):
        return DeliveryError(f"SMTP unavailable: {type(exc).__name__}: {exc}", broken=True)
    return DeliveryError(f"{type(exc).__name__}: {exc}", broken=True)


class SmtpTransport:
    """One connection per delivery batch; every step bounded by the timeout."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        starttls: bool,
        tls: bool,
        user: str | None,
        password: str | None,
        timeout: float,
    ) -> None:
        self._host, self._port, self._timeout = host, port, timeout
        self._starttls, self._tls = starttls, tls
        self._user, self._password = user, password

    def describe(self) -> str:
        return f"SMTP {self._host}:{self._port}"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Send]:
        smtp = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._user,
            password=self._password,
            timeout=self._timeout,
            start_tls=self._starttls,
            use_tls=self._tls,
        )
        try:
            async with asyncio.timeout(self._timeout):
                await smtp.connect()
        except Exception as exc:
            raise classify(exc) from None

        async def send(message: Message) -> None:
            try:
                async with asyncio.timeout(self._timeout):
                    if _utf8(message):
                        await _send_utf8(smtp, message)
                    else:
                        await smtp.send_message(message)
            except Exception as exc:
                raise classify(exc) from None

        try:
            yield send
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._timeout):
                    await smtp.quit()
            smtp.close()


def _utf8(message: Message) -> bool:
    # aiosmtplib flattens every message that is not an EmailMessage with compat32, which
    # would turn a non-ASCII address into an encoded-word: such a message is sent here
    return not isinstance(message, EmailMessage) and bool(getattr(message.policy, "utf8", False))


async def _send_utf8(smtp: aiosmtplib.SMTP, message: Message) -> None:
    """Send with SMTPUTF8 (which implies 8BITMIME), headers written as UTF-8 as built."""
    if smtp.is_ehlo_or_helo_needed:
        await smtp.ehlo()
    if not smtp.supports_extension("smtputf8"):
        raise aiosmtplib.SMTPNotSupported(
            "553 the address is non-ASCII and the SMTP server does not support SMTPUTF8"
        )
    buffer = BytesIO()
    BytesGenerator(buffer, policy=message.policy).flatten(message)
    await smtp.sendmail(
        str(message["From"]),
        [str(message["To"])],
        buffer.getvalue(),
        mail_options=["SMTPUTF8", "BODY=8BITMIME"],
    )


class MboxTransport:
    """Appends to an mbox file (Python's mailbox), locked so replicas can share it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"mbox file {self.path}"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Send]:
        box = await asyncio.to_thread(self._open)

        async def send(message: Message) -> None:
            try:
                await asyncio.to_thread(self._append, box, message)
            except OSError as exc:
                raise DeliveryError(f"cannot write {self.path}: {exc}", broken=True) from None

        try:
            yield send
        finally:
            await asyncio.to_thread(self._close, box)

    def _open(self) -> mailbox.mbox:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.mbox(self.path)
            for _ in range(LOCK_ATTEMPTS):
                try:
                    box.lock()
                    return box
                except mailbox.ExternalClashError:  # another replica is appending: wait
                    time.sleep(0.05)
        except (OSError, mailbox.Error) as exc:
            raise DeliveryError(f"cannot open {self.path}: {exc}", broken=True) from None
        raise DeliveryError(f"{self.path} stayed locked by another process", broken=True)

    @staticmethod
    def _append(box: mailbox.mbox, message: Message) -> None:
        box.add(message)
        box.flush()  # on disk before the delivery is recorded

    @staticmethod
    def _close(box: mailbox.mbox) -> None:
        box.unlock()
        box.close()


def transport_for(settings: NotifierSettings) -> Transport:
    """The SMTP server the settings name, or the mbox file when they name none."""
    if settings.outbox is not None:
        return MboxTransport(settings.outbox)
    assert settings.smtp_host is not None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpTransport(
        host=settings.smtp_host,
        port=settings.smtp_port,
        starttls=settings.smtp_starttls,
        tls=settings.smtp_tls,
        user=settings.smtp_user,
        password=password,
        timeout=settings.smtp_timeout,
    )
