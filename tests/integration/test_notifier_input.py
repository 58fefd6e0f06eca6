"""Bad input: unreadable events on KEYS, unknown users, bad dates, refused time travel."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from contracts.calendar import add_months
from contracts.envelope import canonical_json
from contracts.keys import KEYS_STREAM, event_subject
from services.common.streams import ensure_stream
from tests.drivers.notifier import Notify, running_notifier, settings_for
from tests.plugins.db import sqlite_only

if TYPE_CHECKING:
    from pathlib import Path

    from nats.aio.client import Client

    from services.notifier.settings import NotifierSettings
    from tests.drivers.smtp import SmtpSink

pytestmark = pytest.mark.nats
T0 = datetime(2025, 3, 31, 8, 0, tzinfo=UTC)


def envelope(account: str, sequence: int, payload: dict[str, Any]) -> bytes:
    """A KEYS event as the keys service writes it (the hash chain is not checked here)."""
    return canonical_json(
        {
            "event_id": uuid.uuid4().hex,
            "type": payload.get("kind", "?"),
            "version": 1,
            "stream_id": account,
            "sequence": sequence,
            "occurred_at": T0.isoformat(),
            "actor": "alice",
            "correlation_id": "c",
            "causation_id": "c",
            "prev_hash": "0" * 64,
            "hash": "0" * 64,
            "payload": payload,
        }
    )


async def test_unreadable_events_are_skipped_without_blocking_later_ones(
    nc: Client,
    notify: Notify,
    notifier_settings: NotifierSettings,
    smtp_sink: SmtpSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_notifier(notifier_settings):  # before KEYS exists: it waits for it
        js = nc.jetstream()
        await ensure_stream(js, KEYS_STREAM)
        subject = event_subject("acme")
        opened = {"kind": "AccountOpened", "owner": "alice", "owner_email": "alice@x.io"}
        junk = [
            b"not json at all",
            b"[1, 2]",
            envelope("acme", 1, {"kind": "KeyExploded", "key_id": "k0"}),
            envelope("acme", 1, {"kind": "KeyGenerated", "key_id": "k0"}),  # no hint
            canonical_json({"payload": opened}),  # no stream_id
        ]
        for data in junk:
            await js.publish(subject, data, stream=KEYS_STREAM.name)
        await js.publish(subject, envelope("acme", 1, opened), stream=KEYS_STREAM.name)
        generated = {"kind": "KeyGenerated", "key_id": "k1", "hint": "klk_…ab12", "fingerprint": ""}
        await js.publish(subject, envelope("acme", 2, generated), stream=KEYS_STREAM.name)
        await notify.caught_up()

        result = await notify.sweep(add_months(T0, 5))
        assert (result["claimed"], result["delivered"]) == (1, 1)
        assert [m["To"] for m in smtp_sink.messages] == ["alice@x.io"]
    skipped = sorted(r.getMessage() for r in caplog.records if "is not an event" in r.getMessage())
    assert [m.split("sequence ")[1].split(" ")[0] for m in skipped] == ["1", "2", "3", "4", "5"]


@sqlite_only
async def test_the_notifier_declares_notify_and_leaves_keys_as_it_was(
    nc: Client, notifier_settings: NotifierSettings
) -> None:
    js = nc.jetstream()
    await ensure_stream(js, KEYS_STREAM)
    before = (await js.stream_info("KEYS")).config
    async with running_notifier(notifier_settings):
        notify_config = (await js.stream_info("NOTIFY")).config
        consumer = await js.consumer_info("KEYS", "notifier-keys")
    assert (await js.stream_info("KEYS")).config == before
    assert notify_config.subjects == ["notify.events.>"]
    assert (notify_config.max_age, notify_config.deny_delete, notify_config.deny_purge) == (
        0,
        True,
        True,
    )
    assert consumer.config.durable_name == "notifier-keys"


@sqlite_only
@pytest.mark.usefixtures("notifier_service")
async def test_an_unknown_user_has_an_empty_inbox(notify: Notify) -> None:
    assert await notify.sidebar("nobody-at-all") == []
    assert await notify.sidebar("nobody", account_id="acme", unread_only=True) == []
    status = await notify.reminders("no-such-account")
    assert (status["key"], status["reminders"], status["upcoming"]) == (None, [], [])


BAD = [
    ("notify.cmd.sweep", {"as_of": "2026-13-01"}, "as_of"),
    ("notify.cmd.sweep", {"as_of": "yesterday"}, "as_of"),
    ("notify.cmd.sweep", {"as_of": 1767225600}, "as_of"),
    ("notify.cmd.sweep", {"when": "2026-01-01"}, "when"),
    ("notify.query.reminders", {"account_id": "acme", "as_of": "2026-02-30"}, "as_of"),
    ("notify.query.reminders", {"as_of": "2026-01-01"}, "account_id"),
    ("notify.query.sidebar", {}, "user"),
    ("notify.query.sidebar", {"user": "bob", "unread_only": "yes"}, "unread_only"),
    ("notify.query.sidebar", {"user": "bob", "limit": 0}, "limit"),
    ("notify.cmd.mark_read", {"user": "bob", "ids": []}, "ids"),
    ("notify.cmd.mark_read", {"user": "bob", "ids": ["../etc"]}, "ids"),
    ("notify.cmd.mark_read", b"not json", "JSON"),
    ("notify.query.sidebar", b"", "JSON"),
]


@sqlite_only
@pytest.mark.usefixtures("notifier_service")
async def test_bad_requests_get_a_clear_error_never_a_timeout(notify: Notify) -> None:
    for subject, body, field in BAD:
        error = await notify.ask(subject, body, wait=2)
        assert error["code"] == "invalid_request", (subject, body, error)
        assert field in error["message"], (subject, body, error)


@sqlite_only
async def test_a_future_sweep_needs_time_travel_turned_on(
    notify: Notify, nats_url: str, db_url: str, tmp_path: Path
) -> None:
    settings = settings_for(nats_url, db_url, tmp_path, None, allow_time_travel=False)
    async with running_notifier(settings):
        future = datetime.now(UTC) + timedelta(days=30)
        error = await notify.ask("notify.cmd.sweep", {"as_of": future.isoformat()})
        assert error["code"] == "time_travel_disabled"
        assert "KEYLEDGER_ALLOW_TIME_TRAVEL" in error["message"]
        past = await notify.ask("notify.cmd.sweep", {"as_of": "2020-01-01"})
        assert past["due_keys"] == 0
        now = await notify.ask("notify.cmd.sweep", {})
        assert now["claimed"] == 0
        health = await notify.ask("notify.query.health", {})
    assert health["mail"] == f"mbox file {tmp_path / 'outbox.mbox'}"
    assert json.loads(json.dumps(health))["time_travel"] is False
