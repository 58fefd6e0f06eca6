"""The reminder email as bytes: one fixed MIME template, only the varying fields substituted."""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

MAX_LINE = 78  # RFC 5322's recommended header line length, the one the e-mail library folds at
# headers written as UTF-8, for a non-ASCII address; "\n" lines like the rest of the mbox
UTF8_HEADERS = policy.SMTPUTF8.clone(linesep="\n")
_PLAIN = re.compile(r"[ -~]*")  # printable ASCII: a header value that needs no encoding
_PART = (
    "--{boundary}\n"
    'Content-Type: text/{kind}; charset="utf-8"\n'
    "MIME-Version: 1.0\n"
    "Content-Transfer-Encoding: {cte}\n"
    "\n"
    "{body}\n"
)


@dataclass(frozen=True, slots=True)
class Mail:
    """A reminder email: its envelope and the RFC 5322 message ("\\n" lines; SMTP sends CRLF)."""

    reminder_id: str
    sender: str  # the envelope sender: the From address
    recipient: str
    utf8: bool  # a non-ASCII address: the headers are UTF-8 and SMTPUTF8 is needed
    data: bytes  # the bodies as 8bit UTF-8
    head: str
    text: str
    markup: str

    def seven_bit(self) -> bytes:
        """The same message with base64 bodies, for a server without 8BITMIME."""
        return _assemble(self, "base64")


@functools.lru_cache(maxsize=64)
def from_header(sender: str, utf8: bool) -> tuple[str, str]:
    """(the From: line as the e-mail library writes it, the envelope address); the sender is
    one setting, so the library's encoding work is done once per process."""
    msg = Message(policy=UTF8_HEADERS if utf8 else policy.compat32)
    msg["From"] = sender
    line = msg.as_bytes().decode("utf-8" if utf8 else "ascii").rstrip("\n") + "\n"
    return line, envelope_sender(sender)


_8BIT = "Content-Transfer-Encoding: 8bit"


@functools.lru_cache(maxsize=16)
def _date(moment: datetime) -> str:
    # a sweep sends many mails a second: the Date header is formatted once for them
    return format_datetime(moment)


@functools.lru_cache(maxsize=64)
def envelope_sender(sender: str) -> str:
    """The address of a From value ("name <address>"), as aiosmtplib takes it for MAIL FROM."""
    return parseaddr(sender)[1]


@functools.lru_cache(maxsize=1024)
def _library_header(name: str, value: str, utf8: bool) -> str:
    # the rare value that is not printable ASCII: let the e-mail library encode and fold it
    msg = Message(policy=UTF8_HEADERS if utf8 else policy.compat32)
    msg[name] = value
    return msg.as_bytes().decode("utf-8" if utf8 else "ascii").rstrip("\n") + "\n"


def header(name: str, value: str, utf8: bool) -> str:
    """One header line, folded at spaces to 78 characters as the e-mail library folds it."""
    line = f"{name}: {value}"
    if len(line) <= MAX_LINE and _PLAIN.fullmatch(value):
        return line + "\n"
    if not _PLAIN.fullmatch(value):
        return _library_header(name, value, utf8)
    lines, current = [], f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > MAX_LINE and current.strip() not in ("", f"{name}:"):
            lines.append(current)
            current = ""
        current += f" {word}"
    lines.append(current)
    return "\n".join(lines) + "\n"


def build(
    *,
    reminder_id: str,
    sender: str,
    recipient: str,
    utf8: bool,
    subject: str,
    message_id: str,
    now: datetime,
    text: str,
    markup: str,
) -> Mail:
    """The multipart/alternative reminder: text and HTML, UTF-8, 8bit."""
    from_line, envelope_sender = from_header(sender, utf8)
    boundary = f"=_keyledger_{reminder_id}"  # cannot occur in the text: ids hold no "="
    head = (
        "Content-Type: multipart/alternative;\n"
        f' boundary="{boundary}"\n'
        "MIME-Version: 1.0\n"
        f"{header('Subject', subject, utf8)}"
        f"{from_line}"
        f"To: {recipient}\n"  # the address rule made it safe unquoted, raw UTF-8 if non-ASCII
        f"Date: {_date(now.replace(microsecond=0))}\n"
        f"Message-ID: {message_id}\n"
        f"X-Keyledger-Reminder: {reminder_id}\n"
        "\n"
    )
    part = f'Content-Type: text/{{}}; charset="utf-8"\nMIME-Version: 1.0\n{_8BIT}\n\n'
    data = (
        f"{head}--{boundary}\n{part.format('plain')}{text}\n"
        f"--{boundary}\n{part.format('html')}{markup}\n--{boundary}--\n"
    ).encode()
    return Mail(reminder_id, envelope_sender, recipient, utf8, data, head, text, markup)


def _assemble(mail: Mail, cte: str) -> bytes:
    boundary = f"=_keyledger_{mail.reminder_id}"
    parts = [
        _PART.format(
            boundary=boundary,
            kind=kind,
            cte=cte,
            body=base64.encodebytes(body.encode()).decode(),
        )
        for kind, body in (("plain", mail.text), ("html", mail.markup))
    ]
    return (mail.head + "".join(parts) + f"--{boundary}--\n").encode()
