"""The template-built reminder mail reads back as the one the e-mail library built, over
varied reminders, and every line of it stays inside RFC 5322's limits."""

from __future__ import annotations

import random
import re
import string
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import Message
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtplib.email import flatten_message

from services.notifier.domain import ActiveKey, Person, plan
from services.notifier.reminders.messages import email
from services.notifier.reminders.mime import header
from tests.unit.notifier.legacy_mail import legacy_email

if TYPE_CHECKING:
    from email.message import EmailMessage

    from services.notifier.domain import Reminder

ACCOUNT_CHARS = string.ascii_letters + string.digits + "_-"
USER_CHARS = string.ascii_letters + string.digits + "._@+-"
LOCALS = ["alice", "a.b+tag", "x" * 64, "ünïcödé", "用户", "o'brien", "!#$%&*/=?^_`{|}~-"]
DOMAINS = ["example.com", "exämple.com", "例子.广告", "a-b.c-d.example.org"]
SENDERS = [
    "keyledger <keyledger@localhost>",
    "kl@x.io",
    "Key Ledger Notifier <n@x.io>",
    "Schlüsselbund <n@x.io>",  # a non-ASCII name: an encoded-word, unless the headers are UTF-8
]


def reminders(seed: int) -> list[tuple[Reminder, str, datetime]]:
    """Random reminders within the contracts' rules: ids of every length, every milestone
    kind, rotation dates ahead, today and past, ASCII and non-ASCII addresses."""
    rng = random.Random(seed)
    out = []
    for _ in range(60):
        account = rng.choice(string.ascii_letters) + "".join(
            rng.choice(ACCOUNT_CHARS) for _ in range(rng.choice([0, 3, 20, 40, 63]))
        )
        user = rng.choice(string.ascii_letters) + "".join(
            rng.choice(USER_CHARS) for _ in range(rng.choice([0, 5, 30, 90, 127]))
        )
        since = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**8))
        key = ActiveKey(account, "key_1", "klk_…x7q2", since, user, "evt-1")
        address = f"{rng.choice(LOCALS)}@{rng.choice(DOMAINS)}"
        months = rng.choice([5, 6, 12, 18, 120])
        reminder = plan(key, months, [Person(user, address, admin=True)])[0]
        now = since + timedelta(days=rng.randrange(5000), seconds=rng.randrange(86400))
        if rng.random() < 0.2:
            now = now.astimezone(timezone(timedelta(hours=rng.randrange(-12, 13))))
        out.append((reminder, rng.choice(SENDERS), now))
    return out


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert not message.defects, message.defects
    return message  # type: ignore[return-value]


def semantic(raw: bytes) -> dict[str, Any]:
    """What a mail reader sees: headers (unfolded, decoded), each part's type and text."""
    message = parsed(raw)
    parts = []
    for part in message.iter_parts():
        content = part.get_content()
        if part.get_content_type() == "text/html":
            content = re.sub(r">\n<", "><", content)  # a line break between elements
        parts.append((part.get_content_type(), part.get_content_charset(), content))
    return {
        # stripped: the library's UTF-8 policy sometimes folds right after "Subject:", which
        # reads back with a leading space
        "headers": [(name, str(value).strip()) for name, value in message.items()],
        "type": (message.get_content_type(), message.get_boundary()),
        "parts": parts,
    }


@pytest.mark.parametrize("seed", range(5))
def test_the_template_mail_reads_as_the_library_mail(seed: int) -> None:
    for reminder, sender, now in reminders(seed):
        new = email(reminder, sender=sender, now=now)
        old = legacy_email(reminder, sender=sender, now=now)
        assert semantic(new.data) == semantic(old.as_bytes())
        assert new.utf8 == bool(getattr(old.policy, "utf8", False))
        assert new.sender == sender.rpartition("<")[2].rstrip(">")
        assert new.recipient == reminder.email


@pytest.mark.parametrize("seed", range(5))
def test_every_line_stays_within_rfc_5322_limits(seed: int) -> None:
    for reminder, sender, now in reminders(seed):
        mail = email(reminder, sender=sender, now=now)
        head = mail.data.partition(b"\n\n")[0]
        # 998 octets a line is RFC 5322's limit; 78 its advice, kept where there is a space to
        # fold at (an address has none)
        assert all(len(line) <= 998 for line in mail.data.split(b"\n"))
        subject = head[head.index(b"\nSubject:") + 1 : head.index(b"\nFrom:")]
        assert all(len(line.decode()) <= 78 for line in subject.split(b"\n"))
        assert b"\r" not in mail.data
        message = parsed(mail.data)
        assert message["Message-ID"] == f"<{reminder.reminder_id}@notifier.keyledger>"
        assert message["Date"].datetime == now.replace(microsecond=0)


@pytest.mark.parametrize("seed", range(3))
def test_the_seven_bit_form_is_ascii_and_says_the_same(seed: int) -> None:
    for reminder, sender, now in reminders(seed):
        mail = email(reminder, sender=sender, now=now)
        if mail.utf8:
            continue  # SMTPUTF8 implies 8BITMIME: never sent in 7 bits
        seven = mail.seven_bit()
        assert seven.isascii()
        assert semantic(seven) == semantic(mail.data)
        # and as aiosmtplib flattened the library's mail for a server without 8BITMIME
        old = flatten_message(legacy_email(reminder, sender=sender, now=now), cte_type="7bit")
        assert semantic(seven) == semantic(old)


def test_a_header_is_folded_at_spaces_as_the_library_folds_it() -> None:
    for length in range(1, 65):
        value = f"Rotate the API key of account {'a' * length}: in use for 120 months"
        library = Message()
        library["Subject"] = value
        assert header("Subject", value, False) == library.as_string(maxheaderlen=78)[:-1]
    assert header("Subject", "ünï", True) == "Subject: ünï\n"
    assert header("Subject", "ünï", False) == "Subject: =?utf-8?b?w7xuw68=?=\n"


def test_a_non_ascii_sender_address_gets_utf8_headers_and_smtputf8() -> None:
    key = ActiveKey("acme", "key_1", "klk_…x7q2", datetime(2025, 1, 31, tzinfo=UTC), "al", "e")
    reminder = plan(key, 5, [Person("al", "al@x.io", admin=True)])[0]
    mail = email(reminder, sender="Notifier <nötifier@exämple.com>", now=datetime.now(UTC))
    assert mail.utf8
    assert mail.sender == "nötifier@exämple.com"
    assert "\nFrom: Notifier <nötifier@exämple.com>\n" in mail.data.decode()
    named = email(reminder, sender="Schlüsselbund <n@x.io>", now=datetime.now(UTC))
    assert not named.utf8  # only an address needs SMTPUTF8; a name is an encoded-word
    assert "\nFrom: =?utf-8?" in named.data.decode()
