"""What a reminder says: the email (plain text and HTML) and the sidebar entry; pure."""

from __future__ import annotations

import html
import re
from email import policy
from email.charset import Charset
from email.headerregistry import Address
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import TYPE_CHECKING

from contracts.calendar import recommended_rotation
from contracts.mailaddress import address_problem, needs_smtputf8

if TYPE_CHECKING:
    from datetime import datetime
    from email.message import Message

    from services.notifier.domain import Reminder

MESSAGE_ID_DOMAIN = "notifier.keyledger"


def message_id(reminder_id: str) -> str:
    """Deterministic, so a downstream mail system can drop a resent duplicate."""
    return f"<{reminder_id}@{MESSAGE_ID_DOMAIN}>"


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _months(count: int) -> str:
    return f"{count} month" if count == 1 else f"{count} months"


def title(reminder: Reminder) -> str:
    return (
        f"Rotate the API key of account {reminder.account_id}: "
        f"in use for {_months(reminder.milestone)}"
    )


def _facts(reminder: Reminder) -> tuple[str, str, str]:
    """(the key's age, the rotation advice, what to do), shared by every format."""
    rotate_by = recommended_rotation(reminder.in_use_since)
    age = (
        f"The API key {reminder.key_hint} of account {reminder.account_id} has been in use "
        f"for {_months(reminder.milestone)}, since {_day(reminder.in_use_since)}."
    )
    if rotate_by > reminder.due_at:
        advice = f"Recommended rotation date: {_day(rotate_by)}."
    elif rotate_by == reminder.due_at:
        advice = f"Its recommended rotation date is today, {_day(rotate_by)}."
    else:
        advice = f"Its recommended rotation date, {_day(rotate_by)}, has passed."
    todo = (
        f"Rotate it: `keyledger key rotate {reminder.account_id} --as {reminder.recipient} "
        "--yes` (add --grace 1h to keep the old key working while you switch), then put the "
        "new key into every integration that uses this one."
    )
    return age, advice, todo


def sidebar_text(reminder: Reminder) -> tuple[str, str]:
    """(title, message) of the in-app notification."""
    return title(reminder), " ".join(_facts(reminder))


def _utf8_8bit() -> Charset:
    # 8bit keeps the mbox readable; aiosmtplib re-encodes for a server without 8BITMIME
    charset = Charset("utf-8")
    charset.body_encoding = None  # type: ignore[assignment]  # None: no encoding (typeshed: int)
    return charset


_UTF8 = _utf8_8bit()
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
# headers written as UTF-8, for a non-ASCII address; "\n" lines like the rest of the mbox
# (aiosmtplib turns them into CRLF on the wire)
UTF8_HEADERS = policy.SMTPUTF8.clone(linesep="\n")


def recipient_address(reminder: Reminder) -> Address:
    """The reminder's address as the e-mail library holds it; ValueError if it is none
    the contracts' rule accepts (an event written before the rule may still carry one)."""
    if not reminder.email:
        raise ValueError(f"no email address known for {reminder.recipient}")
    if _UNSAFE.search(reminder.recipient):
        raise ValueError(f"the address of {reminder.recipient} contains a line break or control")
    problem = address_problem(reminder.email)
    if problem is not None:
        raise ValueError(f"unusable address for {reminder.recipient}: {problem}")
    local, _, domain = reminder.email.rpartition("@")
    return Address(username=local, domain=domain)


def email(reminder: Reminder, *, sender: str, now: datetime) -> Message:
    """The reminder email; ValueError if there is no address or one the rule refuses.

    Built with the compat32 MIME classes: four times cheaper than EmailMessage, which
    matters when a sweep sends thousands. A non-ASCII address cannot be an RFC 2047
    encoded-word, so that message gets UTF8_HEADERS and is sent with SMTPUTF8.
    """
    to = recipient_address(reminder)
    utf8 = needs_smtputf8(to.addr_spec)
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
    # a fixed boundary (it cannot occur in the text) spares the generator a regex per mail
    msg = MIMEMultipart(
        "alternative",
        boundary=f"=_keyledger_{reminder.reminder_id}",
        policy=UTF8_HEADERS if utf8 else policy.compat32,
    )
    msg["Subject"] = title(reminder)
    msg["From"] = sender
    msg["To"] = str(to)  # the rule made this the address unchanged: nothing to quote
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(reminder.reminder_id)
    msg["X-Keyledger-Reminder"] = reminder.reminder_id
    # a Charset instance is accepted since Python 3.5; typeshed only allows a name
    msg.attach(MIMEText(text, "plain", _UTF8))  # type: ignore[arg-type]
    msg.attach(MIMEText(markup, "html", _UTF8))  # type: ignore[arg-type]
    return msg
