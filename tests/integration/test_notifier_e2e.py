"""The notifier end to end over NATS with the real keys service and a real SMTP server."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from contracts.calendar import add_months
from contracts.envelope import GENESIS_HASH, chain_hash
from keyledger.audit.replay import read_stream
from tests.plugins.db import sqlite_only
from tests.random_refs import new_account

if TYPE_CHECKING:
    from tests.drivers.keys import Request
    from tests.drivers.notifier import Notify
    from tests.drivers.smtp import SmtpSink

pytestmark = [pytest.mark.nats, pytest.mark.usefixtures("notifier_service")]


async def command(request_json: Request, verb: str, **body: Any) -> dict[str, Any]:
    reply = await request_json(f"keys.cmd.{verb}", body)
    assert reply["ok"], reply
    return dict(reply["result"])


async def account_with_key(
    request_json: Request,
    account: str,
    *,
    admins: tuple[str, ...] = ("bob",),
    creator: str = "alice",
) -> dict[str, Any]:
    await command(
        request_json, "open_account", account_id=account, owner="alice", email="alice@x.io"
    )
    for user in admins:
        await command(
            request_json, "grant_admin", account_id=account, actor="alice", user=user,
            email=f"{user}@x.io",
        )  # fmt: skip
    return await command(request_json, "generate", account_id=account, actor=creator)


def since(key: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(key["created_at"])


async def notify_events(nc: Any) -> list[dict[str, Any]]:
    return [json.loads(data) async for _, data in read_stream(nc, "NOTIFY", "notify.events.>")]


async def test_milestones_go_out_on_their_channels_once(
    request_json: Request, notify: Notify, smtp_sink: SmtpSink, nc: Any
) -> None:
    account = new_account()
    key = await account_with_key(request_json, account)
    t0 = since(key)

    early = await notify.sweep(add_months(t0, 5) - timedelta(seconds=1))
    assert (early["due_keys"], early["claimed"], smtp_sink.messages) == (0, 0, [])

    five = await notify.sweep_months(t0, 5)
    assert (five["claimed"], five["delivered"], five["published"]) == (2, 2, 2)
    assert sorted(m["To"] for m in smtp_sink.messages) == ["alice@x.io", "bob@x.io"]
    assert await notify.sidebar("alice") == []
    assert (await notify.sweep_months(t0, 5))["claimed"] == 0  # a repeated sweep sends nothing

    six = await notify.sweep_months(t0, 6)
    assert (six["claimed"], six["delivered"]) == (2, 2)
    assert len(smtp_sink.messages) == 2  # sidebar only
    [entry] = await notify.sidebar("bob")
    assert (entry["account_id"], entry["milestone_months"], entry["read_at"]) == (account, 6, None)
    assert key["hint"] in entry["message"]

    twelve = await notify.sweep_months(t0, 12)
    assert (twelve["claimed"], twelve["delivered"]) == (4, 4)
    assert len(smtp_sink.messages) == 4
    assert [e["milestone_months"] for e in await notify.sidebar("alice")] == [12, 6]

    mail = smtp_sink.to("bob@x.io")[-1]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert account in text
    assert key["hint"] in text
    assert "12 months" in text
    assert add_months(t0, 6).strftime("%Y-%m-%d") in text
    assert "<p>" in html
    assert len(set(smtp_sink.ids())) == 4

    # no secret anywhere: mails, sidebar, and the audit events on NOTIFY
    events = await notify_events(nc)
    assert len(events) == 8
    everything = [m.as_string() for m in smtp_sink.messages] + [json.dumps(events)]
    assert not any(key["key"] in blob for blob in everything)
    assert {e["payload"]["channel"] for e in events} == {"email", "sidebar"}
    prev = GENESIS_HASH  # one hash chain per account, as on KEYS
    for number, event in enumerate(events, start=1):
        assert (event["sequence"], event["prev_hash"]) == (number, prev)
        assert event["hash"] == chain_hash(event)
        assert event["event_id"] == event["payload"]["reminder_id"].replace("-", "")
        prev = event["hash"]


async def test_recipients_follow_admins_and_the_last_creator(
    request_json: Request, notify: Notify, smtp_sink: SmtpSink
) -> None:
    account = new_account()
    key = await account_with_key(request_json, account, admins=("bob",), creator="bob")
    t0 = since(key)
    await notify.sweep_months(t0, 5)
    await command(request_json, "revoke_admin", account_id=account, actor="alice", user="bob")
    await command(
        request_json, "grant_admin", account_id=account, actor="alice", user="carol",
        email="carol@x.io",
    )  # fmt: skip
    await notify.sweep_months(t0, 12)
    got = sorted((m["To"], "12 months" in str(m["Subject"])) for m in smtp_sink.messages)
    # bob, revoked, still hears as the key's creator; carol, granted later, from then on
    assert got == [
        ("alice@x.io", False),
        ("alice@x.io", True),
        ("bob@x.io", False),
        ("bob@x.io", True),
        ("carol@x.io", True),
    ]


async def test_rotation_restarts_the_schedule_and_deactivation_stops_it(
    request_json: Request, notify: Notify, smtp_sink: SmtpSink
) -> None:
    account = new_account()
    t0 = since(await account_with_key(request_json, account, admins=()))
    await notify.sweep_months(t0, 5)
    rotated = await command(request_json, "rotate", account_id=account, actor="alice", confirm=True)
    t1 = since(rotated)
    assert (await notify.sweep_months(t1, 4))["claimed"] == 0  # the old key's 6 months: gone
    status = await notify.reminders(account, add_months(t1, 4))
    assert status["key"]["key_id"] == rotated["key_id"]
    assert [u["milestone_months"] for u in status["upcoming"]] == [5, 6, 12]
    assert (await notify.sweep_months(t1, 5))["delivered"] == 1
    assert [m["Subject"].count("5 months") for m in smtp_sink.messages] == [1, 1]

    await command(request_json, "deactivate", account_id=account, actor="alice", confirm=True)
    late = await notify.sweep_months(t1, 24)
    assert (late["due_keys"], late["claimed"]) == (0, 0)
    assert len(smtp_sink.messages) == 2
    assert (await notify.reminders(account))["key"] is None


async def test_a_key_first_seen_late_gets_only_its_latest_milestone(
    request_json: Request, notify: Notify, smtp_sink: SmtpSink
) -> None:
    account = new_account()
    t0 = since(await account_with_key(request_json, account, admins=()))
    result = await notify.sweep_months(t0, 13)
    assert (result["claimed"], result["delivered"]) == (2, 2)  # month 12: email + sidebar
    [mail] = smtp_sink.messages
    assert "12 months" in str(mail["Subject"])
    assert [e["milestone_months"] for e in await notify.sidebar("alice")] == [12]
    status = await notify.reminders(account, add_months(t0, 13))
    assert status["key"]["age_months"] == 13
    assert [(r["milestone_months"], r["state"]) for r in status["reminders"]] == [
        (12, "delivered"),
        (12, "delivered"),
    ]
    assert [u["milestone_months"] for u in status["upcoming"]] == [18, 24, 30]
    assert status["upcoming"][0]["recipients"] == ["alice"]


@sqlite_only
async def test_sidebar_entries_can_be_marked_read(request_json: Request, notify: Notify) -> None:
    account = new_account()
    t0 = since(await account_with_key(request_json, account, admins=()))
    await notify.sweep_months(t0, 6)
    [entry] = await notify.sidebar("alice", unread_only=True)
    other = str(uuid.uuid4())
    marked = await notify.ask(
        "notify.cmd.mark_read", {"user": "alice", "ids": [entry["id"], other]}
    )
    assert (marked["marked"], marked["unknown"]) == ([entry["id"]], [other])
    assert await notify.sidebar("alice", unread_only=True) == []
    [read] = await notify.sidebar("alice", account_id=account)
    assert read["read_at"] is not None
    assert await notify.sidebar("alice", account_id="elsewhere") == []
    # bob cannot mark alice's entry
    theirs = await notify.ask("notify.cmd.mark_read", {"user": "bob", "ids": [entry["id"]]})
    assert theirs["unknown"] == [entry["id"]]
