"""The reminder's To: header reads back as the very address, ASCII or not, in SMTP and mbox."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.utils import parseaddr
from typing import TYPE_CHECKING

import pytest

from services.notifier.domain import ActiveKey, Person, plan
from services.notifier.reminders.mailer import MboxTransport
from services.notifier.reminders.messages import email

if TYPE_CHECKING:
    from pathlib import Path

    from services.notifier.reminders.mime import Mail

T0 = datetime(2025, 1, 31, 9, 0, tzinfo=UTC)
KEY = ActiveKey("acme", "key_1", "klk_…x7q2", T0, "alice", "evt-1")
ADDRESSES = ["alice@example.com", "ünïcödé@exämple.com", "用户@例子.广告"]


def mail_to(address: str) -> Mail:
    [reminder] = plan(KEY, 5, [Person("alice", address, admin=True)])[:1]
    return email(reminder, sender="keyledger <kl@x.io>", now=T0)


def to_header(raw: bytes) -> bytes:
    [line] = [line for line in raw.splitlines() if line.startswith(b"To:")]
    return line


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_to_header_parses_back_to_the_same_address(address: str) -> None:
    raw = mail_to(address).data
    assert to_header(raw) == b"To: " + address.encode()  # never an RFC 2047 encoded-word
    parsed = message_from_bytes(raw, policy=policy.default)
    assert str(parsed["To"]) == address
    assert parseaddr(str(parsed["To"])) == ("", address)
    assert "Hello alice," in parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_only_a_non_ascii_address_needs_smtputf8() -> None:
    assert not mail_to("alice@example.com").utf8
    assert mail_to("ünïcödé@exämple.com").utf8
    assert mail_to("ünïcödé@exämple.com").recipient == "ünïcödé@exämple.com"
    assert mail_to("alice@example.com").sender == "kl@x.io"  # the envelope: From's address


@pytest.mark.parametrize("address", ['a"b\\c@example.com', "a b@x.io", "alice@-x.io"])
def test_an_address_the_rule_refuses_is_never_put_in_a_header(address: str) -> None:
    with pytest.raises(ValueError, match="unusable address for alice"):
        mail_to(address)


@pytest.mark.parametrize("address", ADDRESSES)
async def test_the_mbox_transport_writes_the_same_message(address: str, tmp_path: Path) -> None:
    transport = MboxTransport(tmp_path / "outbox.mbox")
    async with transport.session() as send:
        await send(mail_to(address))
    box = mailbox.mbox(tmp_path / "outbox.mbox")
    [key] = box.keys()
    raw = box.get_bytes(key)
    assert to_header(raw) == b"To: " + address.encode()
    assert b"\r" not in raw
    assert str(message_from_bytes(raw, policy=policy.default)["To"]) == address
