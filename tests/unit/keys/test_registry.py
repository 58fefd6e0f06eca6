"""The in-memory registry: idempotent folding and the reasons verification gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import keyformat
from services.keys.registry import Registry

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def raw(account: str, seq: int, payload: dict[str, Any], *, at: datetime = T0) -> dict[str, Any]:
    return {
        "stream_id": account,
        "sequence": seq,
        "occurred_at": at.isoformat(),
        "actor": "alice",
        "causation_id": f"cmd-{account}-{seq}",
        "hash": f"h{seq}",
        "payload": payload,
    }


def opened() -> dict[str, Any]:
    return {"kind": "AccountOpened", "owner": "alice", "owner_email": "a@x.io"}


def generated(key_id: str, key: str) -> dict[str, Any]:
    fp = keyformat.fingerprint(key)
    return {"kind": "KeyGenerated", "key_id": key_id, "hint": "h", "fingerprint": fp}


def rotated(old: str, new: str, key: str, grace_until: datetime | None = None) -> dict[str, Any]:
    return {
        "kind": "KeyRotated",
        "old_key_id": old,
        "new_key_id": new,
        "hint": "h",
        "fingerprint": keyformat.fingerprint(key),
        "grace_until": grace_until.isoformat() if grace_until else None,
    }


def test_a_generated_key_verifies_and_names_its_account() -> None:
    reg, key = Registry(), keyformat.generate()
    reg.apply(1, raw("acme", 1, opened()))
    reg.apply(2, raw("acme", 2, generated("k1", key)))
    reason, entry = reg.verify(key, T0)
    assert reason is None
    assert entry is not None
    assert (entry.account_id, entry.key_id) == ("acme", "k1")


def test_verification_reasons() -> None:
    reg, k1, k2 = Registry(), keyformat.generate(), keyformat.generate()
    reg.apply(1, raw("acme", 1, opened()))
    reg.apply(2, raw("acme", 2, generated("k1", k1)))
    reg.apply(3, raw("acme", 3, rotated("k1", "k2", k2)))
    assert reg.verify(k1, T0)[0] == "deactivated"
    assert reg.verify(keyformat.generate(), T0)[0] == "unknown"
    assert reg.verify("klk_nonsense", T0)[0] == "malformed"
    reg.apply(4, raw("acme", 4, {"kind": "KeyDeactivated", "key_id": "k2"}))
    assert reg.verify(k2, T0)[0] == "deactivated"


def test_the_old_key_works_during_grace_and_expires_after() -> None:
    reg, k1, k2 = Registry(), keyformat.generate(), keyformat.generate()
    until = T0 + timedelta(hours=1)
    reg.apply(1, raw("acme", 1, opened()))
    reg.apply(2, raw("acme", 2, generated("k1", k1)))
    reg.apply(3, raw("acme", 3, rotated("k1", "k2", k2, grace_until=until)))
    assert reg.verify(k1, until - timedelta(seconds=1))[0] is None
    assert reg.verify(k1, until)[0] == "expired"
    assert reg.verify(k2, until)[0] is None


def test_deactivation_ends_every_grace_period_at_once() -> None:
    reg, k1, k2 = Registry(), keyformat.generate(), keyformat.generate()
    reg.apply(1, raw("acme", 1, opened()))
    reg.apply(2, raw("acme", 2, generated("k1", k1)))
    reg.apply(3, raw("acme", 3, rotated("k1", "k2", k2, grace_until=T0 + timedelta(days=1))))
    reg.apply(4, raw("acme", 4, {"kind": "KeyDeactivated", "key_id": "k2"}))
    assert reg.verify(k1, T0)[0] == "deactivated"


def test_an_event_seen_twice_is_applied_once() -> None:
    reg = Registry()
    assert reg.apply(1, raw("acme", 1, opened()))
    assert not reg.apply(1, raw("acme", 1, opened()))
    assert reg.state("acme").version == 1


def test_applied_commands_are_remembered_for_retries() -> None:
    reg, key = Registry(), keyformat.generate()
    reg.apply(1, raw("acme", 1, opened()))
    reg.apply(2, raw("acme", 2, generated("k1", key)))
    done = reg.applied("acme", "cmd-acme-2")
    assert done is not None
    assert (done.event_type, done.key_id) == ("KeyGenerated", "k1")
    assert reg.applied("acme", "cmd-other") is None
