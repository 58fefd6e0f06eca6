"""The fast fold leaves exactly the registry the validating fold leaves, whatever KEYS holds."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from contracts import keyformat
from contracts.keys import event_subject
from services.common import eventlog
from services.common.eventlog import Stored
from services.keys.follower import absorb
from services.keys.registry import Registry

if TYPE_CHECKING:
    from collections.abc import Callable

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ACCOUNTS = ("acme", "globex", "initech")
USERS = ("alice", "bob", "carol")


class Validating(Registry):
    """The reference: every event through pydantic, as apply() did before the fast path."""

    def fold(self, stream_seq: int, account_id: str, raw: dict[str, Any]) -> bool:
        return self.apply_validated(stream_seq, account_id, raw)


def contents(registry: Registry) -> tuple[object, ...]:
    return (
        registry.accounts,
        registry.subject_seq,
        registry.last_seq,
        registry._index,
        registry._by_key_id,
        registry._grace,
        registry._admin_of,
        list(registry._recent.items()),  # in order: the oldest is evicted first
    )


def payload(rng: random.Random, registry: Registry, account: str) -> dict[str, Any]:
    state = registry.state(account)
    live = state.active.key_id if state.active else f"k{rng.randrange(9)}"
    fp = keyformat.fingerprint(keyformat.generate())
    until = T0 + timedelta(hours=rng.choice((-1, 1)))
    grace = rng.choice(
        (None, until.isoformat(), until.isoformat().replace("+00:00", "Z"), "soon", 1_800_000_000)
    )
    new_id = f"k{rng.randrange(1000)}"
    rotated = {"kind": "KeyRotated", "old_key_id": live, "new_key_id": new_id, "hint": "h"}
    rotated["fingerprint"] = fp
    kinds = [
        {"kind": "AccountOpened", "owner": rng.choice(USERS), "owner_email": "o@x.io"},
        {"kind": "SuperAdminGranted", "user": rng.choice(USERS), "email": "u@x.io"},
        {"kind": "SuperAdminRevoked", "user": rng.choice(USERS)},
        {"kind": "KeyGenerated", "key_id": new_id, "hint": "klk_…abcd", "fingerprint": fp},
        {"kind": "KeyViewed", "key_id": live, "hint": "klk_…abcd"},
        {"kind": "KeyViewed", "key_id": live},
        {**rotated, "grace_until": grace},
        rotated,
        {"kind": "KeyDeactivated", "key_id": live, "hint": "h"},
        {"kind": "KeyDeactivated", "key_id": live},
    ]
    body = dict(rng.choice(kinds))
    if rng.random() < 0.3:  # something unusual: the fast path must decline or agree
        mutate(rng, body)
    return body


ODD_VALUES: tuple[object, ...] = (None, 1, 1.5, True, [], {}, "", "x", ["KeyViewed"], "zz")


def mutate(rng: random.Random, body: dict[str, Any]) -> None:
    field = rng.choice([*body, "extra"])
    match rng.randrange(4):
        case 0:
            body.pop(field, None)
        case 1:
            body[field] = rng.choice(ODD_VALUES)
        case 2:
            body["kind"] = rng.choice(("KeyViewed", "AccountOpened", "Nope", 7, None))
        case _:
            body[field + "_more"] = rng.choice(ODD_VALUES)  # an unknown field is ignored


def envelope(rng: random.Random, registry: Registry, account: str) -> dict[str, Any]:
    state = registry.state(account)
    at = T0 + timedelta(seconds=rng.randrange(10**6))
    raw: dict[str, Any] = {
        "event_id": f"e{rng.randrange(10**9)}",
        "type": "whatever",
        "version": 1,
        "stream_id": account,
        "sequence": state.version + 1,
        "occurred_at": rng.choice((at.isoformat(), at.isoformat().replace("+00:00", "Z"))),
        "actor": rng.choice(USERS),
        "correlation_id": "c",
        "causation_id": f"cmd-{rng.randrange(50)}",
        "prev_hash": state.last_hash,
        "hash": f"{rng.getrandbits(256):064x}",
        "payload": payload(rng, registry, account),
    }
    if rng.random() < 0.5:
        raw["request_digest"] = rng.choice((None, "d1", "d2", 3))
    if rng.random() < 0.1:
        name = rng.choice([*raw])
        raw[name] = rng.choice((*ODD_VALUES, "2026-13-01", raw[name]))
    if rng.random() < 0.05:
        raw["sequence"] = rng.choice((0, state.version, state.version + 2))  # breaks the chain
    return raw


def history(seed: int, size: int) -> list[Stored]:
    """Messages on the accounts' subjects, built against the reference's state as it goes."""
    rng = random.Random(seed)
    driver, messages = Validating(), []
    for seq in range(1, size + 1):
        account = rng.choice(ACCOUNTS)
        roll = rng.random()
        if roll < 0.04:
            data = rng.choice((b"not json", b"[1,2]", b'{"stream_id":"acme"}', b"null"))
        elif roll < 0.06 and messages:
            data = rng.choice(messages).data  # an older copy published again
        else:
            data = orjson.dumps(envelope(rng, driver, account))
        subject = event_subject(rng.choice(ACCOUNTS) if rng.random() < 0.02 else account)
        messages.append(Stored(seq, subject, data))
        absorb(driver, messages[-1], "driver")
    return messages


def replay(make: Callable[[], Registry], messages: list[Stored], remember_after: int) -> Any:
    eventlog.forget_reported()
    registry = make()
    registry.remember_after = remember_after
    logger = logging.getLogger("keyledger.eventlog")
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        moved = [absorb(registry, m, "test") for m in messages]
    finally:
        logger.removeHandler(handler)
    return contents(registry), moved, records


@pytest.mark.parametrize("seed", range(40))
def test_absorb_builds_the_same_registry_as_the_validating_fold(seed: int) -> None:
    messages = history(seed, 300)
    for remember_after in (0, 150):
        fast = replay(Registry, messages, remember_after)
        assert fast == replay(Validating, messages, remember_after)
    assert any(isinstance(a, dict) and a for a in fast[0][:1])  # accounts were opened


def test_most_events_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    messages = history(1, 300)
    validated: list[int] = []
    original = Registry.apply_validated

    def counting(self: Registry, stream_seq: int, account_id: str, raw: dict[str, Any]) -> bool:
        validated.append(stream_seq)
        return original(self, stream_seq, account_id, raw)

    monkeypatch.setattr(Registry, "apply_validated", counting)
    replay(Registry, messages, 0)
    assert 0 < len(validated) < len(messages) / 3


def raw_event(seq: int, payload: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    raw = {
        "stream_id": "acme",
        "sequence": seq,
        "occurred_at": T0.isoformat(),
        "actor": "alice",
        "causation_id": f"cmd-{seq}",
        "hash": f"h{seq}",
        "payload": payload,
    }
    raw.update(envelope)
    return {k: v for k, v in raw.items() if v is not None}


KEY_FP = keyformat.fingerprint(keyformat.generate())
DIRECT = [
    {"kind": "AccountOpened", "owner": "alice", "owner_email": "a@x.io"},
    {"kind": "KeyGenerated", "key_id": "k1", "hint": "h", "fingerprint": KEY_FP},
    {"kind": "KeyGenerated", "key_id": "k2", "hint": "h", "fingerprint": "not hex"},
    {"kind": "KeyViewed", "key_id": "k1"},
    {"kind": "KeyDeactivated", "key_id": "k1"},
]


@pytest.mark.parametrize("missing", ["actor", "causation_id", "hash", "sequence", "occurred_at"])
def test_apply_fails_alike_on_a_partial_envelope(missing: str) -> None:
    """apply() called directly (tests, benches) with fields missing: same error, same state."""
    outcomes = []
    for make in (Registry, Validating):
        registry, errors = make(), []
        for seq, body in enumerate(DIRECT, start=1):
            try:
                registry.apply(seq, raw_event(seq, body, **{missing: None} if seq > 2 else {}))
            except Exception as exc:  # the type is what is compared
                errors.append(type(exc).__name__)
        outcomes.append((contents(registry), errors))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1]  # something did fail
