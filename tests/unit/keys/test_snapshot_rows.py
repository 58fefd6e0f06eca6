"""The registry snapshot's rows: every field of what the registry holds, round-tripped exactly."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

from contracts import keyformat
from services.keys.domain import AccountState, ActiveKey, KeyChange
from services.keys.registry import Applied, IndexEntry
from services.keys.snapshot_rows import (
    ACCOUNT_FIELDS,
    APPLIED_FIELDS,
    ENTRY_FIELDS,
    decode_account,
    decode_applied,
    encode_account,
    encode_applied,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def test_the_rows_know_every_field_of_the_registry_s_records() -> None:
    """A new field here is state the snapshot would drop: encode it, bump SCHEMA, list it."""
    assert names(AccountState) == ACCOUNT_FIELDS
    assert names(IndexEntry) == ENTRY_FIELDS
    assert names(Applied) == APPLIED_FIELDS


def test_an_account_and_its_keys_round_trip() -> None:
    fp = keyformat.fingerprint(keyformat.generate())
    state = AccountState(
        "acme",
        7,
        "ab" * 32,
        True,
        frozenset({"alice", "bob"}),
        ActiveKey("k3", "…wxyz", fp, T0, "bob"),
        KeyChange("rotated", "bob", T0),
    )
    entries = [
        IndexEntry(b"\x01" * 32, "acme", "k1", "deactivated"),
        IndexEntry(b"\x02" * 32, "acme", "k2", "grace", T0 + timedelta(hours=1)),
        IndexEntry(bytes.fromhex(fp), "acme", "k3", "active"),
    ]
    text = encode_account(state, entries)
    assert text is not None
    assert decode_account("acme", text) == (state, entries)
    assert encode_account(None, []) is None  # a subject with only skipped messages


def test_an_account_without_keys_and_times_with_another_offset() -> None:
    plus_two = timezone(timedelta(hours=2))
    state = AccountState("acme", 1, "cd" * 32, True, frozenset({"alice"}))
    text = encode_account(state, [])
    assert text is not None
    assert decode_account("acme", text) == (state, [])
    done = Applied("KeyRotated", "k2", T0.astimezone(plus_two), "k1", T0, "alice", "d" * 64, 42)
    back = decode_applied(encode_applied(done), 42)
    assert back == done
    assert back.occurred_at.utcoffset() == timedelta(hours=2)  # as folded, not only as instant


def test_a_remembered_command_without_a_key_or_digest() -> None:
    done = Applied("AccountOpened", None, T0, actor="alice", stream_seq=3)
    assert decode_applied(encode_applied(done), 3) == done
