"""A foreign message on an account's subject: skipped, reported once, position moved on."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts.keys import (
    AccountEvent,
    DeactivateKey,
    GenerateKey,
    GrantSuperAdmin,
    KeyResult,
    RevealKey,
    RotateKey,
    event_subject,
)
from contracts.stored import account_of, envelope_problem
from services.common import eventlog
from services.keys.eventstore import Stored
from services.keys.follower import absorb
from services.keys.handlers import handle
from services.keys.registry import Registry
from tests.unit.keys.test_handlers import make_deps, opened

SECRET = "klk_n0tTh1sOn3"
FOREIGN = [
    b'{"stream":"CALLS","seq":1}',
    b"\xff\x00 not json " + SECRET.encode(),
    b"[1, 2, 3]",
    json.dumps({"stream_id": "acme", "payload": SECRET}).encode(),
]


@pytest.fixture(autouse=True)
def fresh_reports() -> None:
    eventlog.forget_reported()


@pytest.mark.parametrize("body", FOREIGN)
async def test_every_command_works_after_a_foreign_message(body: bytes) -> None:
    deps = make_deps()
    await opened(deps)
    await handle(GenerateKey(account_id="acme", actor="alice"), deps)
    deps.events.messages.append((event_subject("acme"), body))  # type: ignore[attr-defined]
    for command in (
        RevealKey(account_id="acme", actor="alice"),
        GrantSuperAdmin(account_id="acme", actor="alice", user="bob", email="b@x.io"),
        RotateKey(account_id="acme", actor="bob", confirm=True),
        DeactivateKey(account_id="acme", actor="alice", confirm=True),
    ):
        await handle(command, deps)
    assert deps.registry.state("acme").active is None
    assert deps.registry.state("acme").version == 6
    assert deps.registry.subject_seq["acme"] == 7


@pytest.mark.parametrize("body", FOREIGN)
def test_absorb_moves_the_position_and_leaves_the_state(
    body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry()
    assert absorb(registry, Stored(1, event_subject("acme"), body), "test") is True
    assert registry.subject_seq == {"acme": 1}
    assert registry.accounts == {}
    assert absorb(registry, Stored(1, event_subject("acme"), body), "test") is False
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "KEYS stream sequence 1 on keys.events.acme" in record.getMessage()
    assert SECRET not in caplog.text


async def test_another_accounts_event_and_an_old_copy_are_skipped() -> None:
    deps = make_deps()
    await opened(deps)
    key = await handle(GenerateKey(account_id="acme", actor="alice"), deps)
    assert isinstance(key, KeyResult)
    generated = deps.events.messages[-1][1]  # type: ignore[attr-defined]
    await handle(DeactivateKey(account_id="acme", actor="alice", confirm=True), deps)

    replica = Registry()
    messages = [
        *deps.events.messages,  # type: ignore[attr-defined]
        (event_subject("acme"), generated),  # the KeyGenerated again: no second life
        (event_subject("globex"), generated),  # acme's event on globex's subject
    ]
    for seq, (subject, data) in enumerate(messages, start=1):
        absorb(replica, Stored(seq, subject, data), "test")
    assert replica.verify(key.key, key.created_at)[0] == "deactivated"
    assert replica.subject_seq == {"acme": 4, "globex": 5}
    assert replica.state("acme").version == 3
    assert "globex" not in replica.accounts


def test_reported_once_per_process(caplog: pytest.LogCaptureFixture) -> None:
    for reader in ("one", "another", "one"):
        eventlog.skipped("KEYS", 7, "keys.events.acme", "not JSON", reader)
    eventlog.skipped("NOTIFY", 7, "notify.events.acme", "not JSON", "one")
    assert len(caplog.records) == 2


def test_a_validation_error_is_described_without_its_input() -> None:
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(AccountEvent).validate_python({"kind": "KeyGenerated", "key_id": SECRET})
    assert SECRET not in eventlog.reason(caught.value)
    assert eventlog.reason(ValueError(SECRET)) == "cannot be applied (ValueError)"


@pytest.mark.parametrize(
    ("subject", "account"),
    [
        ("keys.events.acme", "acme"),
        ("notify.events.acme", "acme"),
        ("copy.KEYSCOPY.keys.events.acme", "acme"),
        ("keys.events.a.b", "a.b"),
        ("keys.other", ""),
    ],
)
def test_the_account_a_subject_names(subject: str, account: str) -> None:
    assert account_of(subject) == account


def test_an_envelope_on_its_own_subject_passes_the_check() -> None:
    raw = {
        "event_id": "e", "type": "KeyViewed", "stream_id": "acme", "sequence": 1,
        "occurred_at": "2026-01-01T00:00:00+00:00", "actor": "alice", "correlation_id": "c",
        "causation_id": "c", "prev_hash": "0", "hash": "1", "payload": {},
    }  # fmt: skip
    assert envelope_problem(raw, "keys.events.acme") is None
    assert envelope_problem(raw) is None
    assert envelope_problem(raw, "keys.events.globex") is not None
    assert envelope_problem({**raw, "payload": SECRET}, "keys.events.acme") is not None
