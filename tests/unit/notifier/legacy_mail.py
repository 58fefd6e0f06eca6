"""The reminder email as the notifier built it with the e-mail library's MIME classes: the
reference the template-built mail is compared with."""

from __future__ import annotations

import html
from email import policy
from email.charset import Charset
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import TYPE_CHECKING

from contracts.mailaddress import needs_smtputf8
from services.notifier.reminders.messages import _facts, message_id, recipient_address, title
from services.notifier.reminders.mime import UTF8_HEADERS

if TYPE_CHECKING:
    from datetime import datetime
    from email.message import Message

    from services.notifier.domain import Reminder


def _utf8_8bit() -> Charset:
    charset = Charset("utf-8")
    charset.body_encoding = None  # type: ignore[assignment]  # None: no encoding (typeshed: int)
    return charset


_UTF8 = _utf8_8bit()


def legacy_email(reminder: Reminder, *, sender: str, now: datetime) -> Message:
    """The previous `messages.email`, unchanged but for its address check (shared)."""
    to = recipient_address(reminder)
    utf8 = needs_smtputf8(to)
    age, advice, todo = _facts(reminder)
    why = (
        f"You receive this as a super-admin of {reminder.account_id} or as the person who "
        "last created its key. The key itself is never sent by email."
    )
    text = f"Hello {reminder.recipient},\n\n{age}\n{advice}\n\n{todo}\n\n{why}\n"
    paragraphs = "".join(f"<p>{html.escape(part)}</p>" for part in (age, advice, todo, why))
    markup = (
        f"<html><body><p>Hello {html.escape(reminder.recipient)},</p>{paragraphs}</body></html>\n"
    )
    msg = MIMEMultipart(
        "alternative",
        boundary=f"=_keyledger_{reminder.reminder_id}",
        policy=UTF8_HEADERS if utf8 else policy.compat32,
    )
    msg["Subject"] = title(reminder)
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(reminder.reminder_id)
    msg["X-Keyledger-Reminder"] = reminder.reminder_id
    msg.attach(MIMEText(text, "plain", _UTF8))  # type: ignore[arg-type]
    msg.attach(MIMEText(markup, "html", _UTF8))  # type: ignore[arg-type]
    return msg
