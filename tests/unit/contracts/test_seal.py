"""seal() writes the bytes the keys service and the notifier wrote by hand before it, but for
the one time form (UTC with `Z`) and the one event id form (32 hex digits)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from contracts.envelope import GENESIS_HASH, Via, canonical_json, chain_hash
from contracts.keys import EVENT_VERSION as KEYS_VERSION
from contracts.keys import AccountOpened, GenerateKey, OpenAccount
from contracts.notifier import EVENT_VERSION as NOTIFY_VERSION
from services.keys.domain import AccountState
from services.keys.handlers import _envelope, _Request
from services.notifier.domain import Reminder
from services.notifier.reminders.publisher import Head, envelope

NOW = datetime(2026, 3, 31, 12, 30, 15, 123456, tzinfo=UTC)


def _sealed(raw: dict[str, Any]) -> bytes:
    raw["hash"] = chain_hash(raw)
    return canonical_json(raw)


def test_keys_envelope_keeps_its_bytes_with_and_without_via() -> None:
    command = OpenAccount(
        command_id="c-1", account_id="acme", owner="alice", email="alice@example.com"
    )
    event = AccountOpened(owner="alice", owner_email="alice@example.com")
    state = AccountState(account_id="acme")
    for via in (None, Via(account="FRONTEND", user="web")):
        raw = _envelope(_Request(command, via, "d" * 64), state, event, NOW, "e-1")
        # the dict the keys service built by hand before seal() existed
        before = {
            "event_id": "e-1",
            "type": "AccountOpened",
            "version": KEYS_VERSION,
            "stream_id": "acme",
            "sequence": 1,
            "occurred_at": "2026-03-31T12:30:15.123456Z",
            "actor": "alice",
            "correlation_id": "c-1",
            "causation_id": "c-1",
            "prev_hash": GENESIS_HASH,
            "payload": event.model_dump(mode="json"),
            "via": via.model_dump(mode="json") if via else None,
            "request_digest": "d" * 64,
        }
        assert canonical_json(raw) == _sealed(before)


def test_keys_envelope_keeps_the_correlation_id_and_chain() -> None:
    command = GenerateKey(command_id="c-2", correlation_id="corr", account_id="acme", actor="bob")
    event = AccountOpened(owner="x", owner_email="x@example.com")
    state = AccountState(account_id="acme", version=4, last_hash="a" * 64)
    raw = _envelope(_Request(command, None, "d" * 64), state, event, NOW, "e-2")
    assert (raw["sequence"], raw["prev_hash"], raw["correlation_id"]) == (5, "a" * 64, "corr")
    assert raw["actor"] == "bob"
    assert raw["hash"] == chain_hash(raw)


def test_notifier_envelope_keeps_its_bytes_without_the_optional_fields() -> None:
    since = datetime(2025, 8, 31, tzinfo=UTC)
    reminder = Reminder(
        reminder_id="6b1d3c1e-8f0a-4c55-9a57-6e6f74696679",
        account_id="acme",
        key_id="k-1",
        key_hint="kl_...abcd",
        in_use_since=since,
        source_event_id="e-0",
        milestone=6,
        channel="email",
        recipient="alice",
        email="alice@example.com",
        due_at=since + timedelta(days=180),
    )
    delivered = NOW.astimezone(timezone(timedelta(hours=2)))
    raw = envelope(reminder, delivered, Head(7, 3, "b" * 64))
    before = {
        "event_id": "6b1d3c1e8f0a4c559a576e6f74696679",
        "type": raw["payload"]["kind"],
        "version": NOTIFY_VERSION,
        "stream_id": "acme",
        "sequence": 4,
        "occurred_at": "2026-03-31T12:30:15.123456Z",  # in UTC, whatever the clock's zone
        "actor": "notifier",
        "correlation_id": "k-1",
        "causation_id": "e-0",
        "prev_hash": "b" * 64,
        "payload": raw["payload"],
    }
    assert "via" not in raw
    assert "request_digest" not in raw
    assert canonical_json(raw) == _sealed(before)
