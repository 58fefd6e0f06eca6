"""Non-ASCII addresses travel intact over SMTPUTF8; an address SMTP would refuse is never taken."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from services.notifier.domain import ActiveKey, Person, plan
from services.notifier.reminders.mailer import DeliveryError, SmtpTransport
from services.notifier.reminders.messages import email
from tests.drivers.smtp import SmtpSink
from tests.integration.test_notifier_e2e import command, since
from tests.random_refs import new_account

if TYPE_CHECKING:
    from tests.drivers.keys import Request
    from tests.drivers.notifier import Notify

UNICODE = "ünïcödé@exämple.com"


@pytest.mark.nats
@pytest.mark.usefixtures("notifier_service")
async def test_a_reminder_to_a_non_ascii_address_arrives_with_the_address_intact(
    request_json: Request, notify: Notify, smtp_sink: SmtpSink
) -> None:
    account = new_account()
    await command(request_json, "open_account", account_id=account, owner="alice", email=UNICODE)
    key = await command(request_json, "generate", account_id=account, actor="alice")
    five = await notify.sweep_months(since(key), 5)
    assert five["delivered"] == 1, five
    [mail] = smtp_sink.to(UNICODE)
    assert smtp_sink.envelopes[-1][1] == [UNICODE]  # RCPT TO named the address as written
    assert f"\nTo: {UNICODE}\r\n".encode() in smtp_sink.raw[-1]  # UTF-8, no encoded-word
    assert account in str(mail["Subject"])


@pytest.mark.nats
@pytest.mark.usefixtures("keys_service")
async def test_an_address_smtp_would_refuse_is_an_invalid_request_naming_the_field(
    request_json: Request,
) -> None:
    body: dict[str, Any] = {"account_id": new_account(), "owner": "alice"}
    reply = await request_json("keys.cmd.open_account", {**body, "email": 'a"b\\c@example.com'})
    assert reply["error"]["code"] == "invalid_request"
    assert reply["error"]["message"].startswith("email: ")
    assert (await request_json("keys.cmd.open_account", {**body, "email": UNICODE}))["ok"]


def unicode_mail() -> Any:
    key = ActiveKey("acme", "key_1", "klk_…x7q2", datetime(2025, 1, 31, tzinfo=UTC), "al", "e")
    [reminder] = plan(key, 5, [Person("al", UNICODE, admin=True)])[:1]
    return email(reminder, sender="keyledger <kl@x.io>", now=datetime.now(UTC))


def transport(sink: SmtpSink) -> SmtpTransport:
    return SmtpTransport(
        host="127.0.0.1", port=sink.port, starttls=False, tls=False,
        user=None, password=None, timeout=5,
    )  # fmt: skip


async def test_the_smtp_transport_sends_a_non_ascii_address_with_smtputf8() -> None:
    sink = SmtpSink().start()
    try:
        async with transport(sink).session() as send:
            await send(unicode_mail())
        assert [str(m["To"]) for m in sink.messages] == [UNICODE]
        assert sink.envelopes == [("kl@x.io", [UNICODE])]
    finally:
        sink.stop()


async def test_a_server_without_smtputf8_fails_a_non_ascii_address_for_good() -> None:
    sink = SmtpSink(smtputf8=False).start()
    try:
        async with transport(sink).session() as send:
            with pytest.raises(DeliveryError) as caught:
                await send(unicode_mail())
        assert caught.value.permanent
        assert not caught.value.broken
        assert "SMTPUTF8" in caught.value.reason
        assert sink.messages == []
    finally:
        sink.stop()


async def test_a_server_without_8bitmime_gets_the_same_mail_in_base64() -> None:
    key = ActiveKey("acme", "key_1", "klk_…x7q2", datetime(2025, 1, 31, tzinfo=UTC), "al", "e")
    [reminder] = plan(key, 5, [Person("al", "al@x.io", admin=True)])[:1]
    mail = email(reminder, sender="keyledger <kl@x.io>", now=datetime.now(UTC))
    sink = SmtpSink(eight_bit=False).start()
    try:
        async with transport(sink).session() as send:
            await send(mail)
        [raw] = sink.raw
        assert raw.isascii()
        assert b"Content-Transfer-Encoding: base64" in raw
        [received] = sink.messages
        text = received.get_body(("plain",))
        assert text is not None
        assert "klk_…x7q2" in text.get_content()
        assert sink.envelopes == [("kl@x.io", ["al@x.io"])]
    finally:
        sink.stop()
