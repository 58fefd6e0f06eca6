"""Command ids bind their request; deadlines; rotate/deactivate name the key they act on."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest

from contracts.envelope import Via
from contracts.keys import (
    DeactivateKey,
    GenerateKey,
    GrantSuperAdmin,
    KeyResult,
    RevealKey,
    RevokeSuperAdmin,
    RotateKey,
)
from contracts.replies import ErrorCode
from services.keys.domain import DomainError, KeyCommand
from services.keys.handlers import Deps, handle
from services.keys.registry import Registry
from tests.unit.keys.test_handlers import NOW, make_deps, opened

BOB = Via(account="FRONTENDS", user="bob")


def stored(deps: Deps) -> list[dict[str, Any]]:
    return [json.loads(data) for _, data in deps.events.messages]  # type: ignore[attr-defined]


async def with_key(deps: Deps) -> KeyResult:
    await opened(deps)
    result = await handle(GenerateKey(account_id="acme", actor="alice", command_id="c-1"), deps)
    assert isinstance(result, KeyResult)
    return result


async def refused(command: KeyCommand, deps: Deps, via: Via | None = None) -> DomainError:
    before = list(deps.events.messages)  # type: ignore[attr-defined]
    with pytest.raises(DomainError) as caught:
        await handle(command, deps, via)
    assert deps.events.messages == before  # type: ignore[attr-defined]
    return caught.value


async def test_a_deactivate_reusing_a_generates_id_is_refused_and_the_key_stays() -> None:
    deps = make_deps()
    key = await with_key(deps)
    deactivate = DeactivateKey(account_id="acme", actor="alice", confirm=True, command_id="c-1")
    error = await refused(deactivate, deps)
    assert error.code == ErrorCode.IDEMPOTENCY_CONFLICT
    assert "c-1 already belongs to another request: generate by alice at 2026-06-01" in str(
        error.message
    )
    assert deps.registry.verify(key.key, NOW) == (None, deps.registry._by_key_id[key.key_id])


@pytest.mark.parametrize(
    "command",
    [
        RotateKey(account_id="acme", actor="alice", confirm=True, command_id="c-1"),
        GrantSuperAdmin(
            account_id="acme", actor="alice", user="bob", email="b@x.io", command_id="c-1"
        ),
        RevokeSuperAdmin(account_id="acme", actor="alice", user="alice", command_id="c-1"),
        RevealKey(account_id="acme", actor="alice", command_id="c-1"),
        GenerateKey(account_id="acme", actor="carol", command_id="c-1"),  # another actor
    ],
    ids=["rotate", "grant", "revoke", "reveal", "other-actor"],
)
async def test_every_verb_reusing_another_commands_id_is_refused(command: KeyCommand) -> None:
    deps = make_deps()
    await with_key(deps)
    assert (await refused(command, deps)).code == ErrorCode.IDEMPOTENCY_CONFLICT


async def test_a_retried_rotate_that_adds_grace_is_refused_not_silently_dropped() -> None:
    deps = make_deps()
    await with_key(deps)
    rotate = RotateKey(account_id="acme", actor="alice", confirm=True, command_id="r-1")
    await handle(rotate, deps)
    with_grace = rotate.model_copy(update={"grace_seconds": 3600})
    assert (await refused(with_grace, deps)).code == ErrorCode.IDEMPOTENCY_CONFLICT
    other_key = rotate.model_copy(update={"expected_key_id": "key_other"})
    assert (await refused(other_key, deps)).code == ErrorCode.IDEMPOTENCY_CONFLICT


async def test_a_genuine_retry_answers_the_same_even_after_a_restart() -> None:
    deps = make_deps()
    key = await with_key(deps)
    rotate = RotateKey(
        account_id="acme",
        actor="alice",
        confirm=True,
        grace_seconds=60,
        expected_key_id=key.key_id,
        command_id="r-1",
    )
    first = await handle(rotate, deps, BOB)
    # a retry has its own deadline and correlation id: still the same request
    retry = rotate.model_copy(update={"deadline": NOW + timedelta(seconds=5)})
    assert await handle(retry, deps, BOB) == first
    restarted = make_deps(deps.events)  # type: ignore[arg-type]
    restarted.vault = deps.vault
    for seq, raw in enumerate(stored(deps), start=1):
        restarted.registry.apply(seq, raw)
    assert await handle(retry, restarted, BOB) == first
    assert (await refused(rotate, restarted, via=None)).code == ErrorCode.IDEMPOTENCY_CONFLICT
    assert len(stored(deps)) == 3


async def test_an_explicit_default_is_the_same_request_as_an_omitted_one() -> None:
    deps = make_deps()
    await with_key(deps)
    rotate = RotateKey(account_id="acme", actor="alice", confirm=True, command_id="r-1")
    first = await handle(rotate, deps)
    assert await handle(rotate.model_copy(update={"grace_seconds": 0}), deps) == first


async def test_events_carry_via_and_a_digest_free_of_secrets() -> None:
    deps = make_deps()
    await opened(deps)
    key = await handle(GenerateKey(account_id="acme", actor="alice"), deps, BOB)
    assert isinstance(key, KeyResult)
    first, last = stored(deps)
    assert first["via"] is None
    assert last["via"] == {"account": "FRONTENDS", "user": "bob"}
    assert len(last["request_digest"]) == 64
    assert key.key not in json.dumps(last)


async def test_events_older_than_the_digest_compare_by_verb_and_actor() -> None:
    deps = make_deps()
    await with_key(deps)
    legacy = Registry()
    for seq, raw in enumerate(stored(deps), start=1):
        raw.pop("request_digest")
        legacy.apply(seq, raw)
    deps.registry = legacy
    retry = GenerateKey(account_id="acme", actor="alice", command_id="c-1")
    assert isinstance(await handle(retry, deps), KeyResult)
    other = RevealKey(account_id="acme", actor="alice", command_id="c-1")
    assert (await refused(other, deps)).code == ErrorCode.IDEMPOTENCY_CONFLICT


# --- deadlines -------------------------------------------------------------------------


async def test_a_command_past_its_deadline_is_not_run() -> None:
    deps = make_deps()
    await with_key(deps)
    late = RevealKey(account_id="acme", actor="alice", deadline=NOW - timedelta(seconds=1))
    error = await refused(late, deps)
    assert error.code == ErrorCode.DEADLINE_EXCEEDED
    assert "passed 1.000 s ago" in error.message


async def test_a_reveal_whose_turn_comes_after_its_deadline_records_no_view() -> None:
    deps = make_deps()
    await with_key(deps)
    lock = deps.locks.setdefault("acme", asyncio.Lock())
    await lock.acquire()
    reveal = RevealKey(account_id="acme", actor="alice", deadline=NOW + timedelta(seconds=1))
    waiting = asyncio.create_task(handle(reveal, deps))
    await asyncio.sleep(0.01)
    deps.clock = lambda: NOW + timedelta(seconds=2)  # the queue ahead took too long
    lock.release()
    with pytest.raises(DomainError) as caught:
        await waiting
    assert caught.value.code == ErrorCode.DEADLINE_EXCEEDED
    assert [e["type"] for e in stored(deps)] == ["AccountOpened", "KeyGenerated"]


async def test_no_deadline_or_one_far_ahead_runs() -> None:
    deps = make_deps()
    await with_key(deps)
    far = NOW.replace(year=9999)
    assert isinstance(await handle(RevealKey(account_id="acme", actor="alice"), deps), KeyResult)
    reveal = RevealKey(account_id="acme", actor="alice", deadline=far)
    assert isinstance(await handle(reveal, deps), KeyResult)


# --- rotate and deactivate name their key ------------------------------------------------


async def test_a_rotate_naming_a_replaced_key_is_superseded() -> None:
    deps = make_deps()
    old = await with_key(deps)
    rotate = RotateKey(account_id="acme", actor="alice", confirm=True, expected_key_id=old.key_id)
    new = await handle(rotate, deps, BOB)
    assert isinstance(new, KeyResult)
    again = rotate.model_copy(update={"command_id": "another"})
    error = await refused(again, deps)
    assert error.code == ErrorCode.SUPERSEDED
    assert error.message == (
        f"key {old.key_id} is no longer the live key: {new.key_id} replaced it "
        "(rotated by alice at 2026-06-01T00:00:00Z); nothing changed"
    )
    deactivate = DeactivateKey(
        account_id="acme", actor="alice", confirm=True, expected_key_id=old.key_id
    )
    assert (await refused(deactivate, deps)).code == ErrorCode.SUPERSEDED
    assert deps.registry.state("acme").active.key_id == new.key_id  # type: ignore[union-attr]


async def test_a_command_naming_a_deactivated_key_is_superseded() -> None:
    deps = make_deps()
    key = await with_key(deps)
    deactivate = DeactivateKey(
        account_id="acme", actor="alice", confirm=True, expected_key_id=key.key_id
    )
    await handle(deactivate, deps)
    rotate = RotateKey(account_id="acme", actor="alice", confirm=True, expected_key_id=key.key_id)
    error = await refused(rotate, deps)
    assert error.code == ErrorCode.SUPERSEDED
    assert "the account has no live key (deactivated by alice at 2026-06-01" in error.message


async def test_without_a_key_id_rotate_acts_on_whatever_key_is_live() -> None:
    deps = make_deps()
    await with_key(deps)
    await handle(RotateKey(account_id="acme", actor="alice", confirm=True), deps)
    result = await handle(RotateKey(account_id="acme", actor="alice", confirm=True), deps)
    assert isinstance(result, KeyResult)
