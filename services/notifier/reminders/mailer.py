"""Where reminder mail goes: an SMTP server (aiosmtplib), or an mbox file when none is set."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import aiosmtplib

from services.notifier.reminders.errors import DeliveryError
from services.notifier.reminders.mbox import MboxTransport

if TYPE_CHECKING:
    from services.notifier.reminders.mime import Mail
    from services.notifier.settings import NotifierSettings

Send = Callable[["Mail"], Awaitable[None]]
__all__ = ["DeliveryError", "MboxTransport", "Send", "SmtpTransport", "Transport", "classify"]


class Transport(Protocol):
    # False: a session is opened per delivery chunk (an mbox lock held for a whole sweep
    # would starve another replica's writer); True: one session per sender for the sweep
    keep_open: bool

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
    """One connection per session, each step bounded by the timeout; the Deliverer keeps
    one session per sender for a whole sweep."""

    keep_open = True

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

        async def send(mail: Mail) -> None:
            try:
                async with asyncio.timeout(self._timeout):
                    await _send(smtp, mail)
            except Exception as exc:
                raise classify(exc) from None

        try:
            yield send
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._timeout):
                    await smtp.quit()
            smtp.close()


async def _send(smtp: aiosmtplib.SMTP, mail: Mail) -> None:
    """One message in its own envelope; a non-ASCII address with SMTPUTF8 (which implies
    8BITMIME), the rest as 8bit when the server takes it and base64 bodies when it does not."""
    if smtp.is_ehlo_or_helo_needed:
        await smtp.ehlo()
    options, data = ["BODY=8BITMIME"], mail.data
    if mail.utf8:
        if not smtp.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported(
                "553 the address is non-ASCII and the SMTP server does not support SMTPUTF8"
            )
        options.insert(0, "SMTPUTF8")
    elif not smtp.supports_extension("8bitmime"):
        options, data = [], mail.seven_bit()
    await smtp.sendmail(mail.sender, [mail.recipient], data, mail_options=options)


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
