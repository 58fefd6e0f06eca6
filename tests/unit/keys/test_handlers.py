"""The command use case with in-memory fakes: append, retry, conflict, vault hygiene."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from contracts.keys import (
    DeactivateKey,
    GenerateKey,
    GrantSuperAdmin,
    KeyResult,
    OpenAccount,
    RevealKey,
    RotateKey,
    event_subject,
)
from services.keys.domain import DomainError
from services.keys.handlers import Deps, handle
from services.keys.registry import Registry
from tests.fakes.keys import FakeEvents, FakeVault

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from services.keys.eventstore import Stored

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ACCOUNT = "acme"


def make_deps(events: FakeEvents | None = None) -> Deps:
    counter = itertools.count()
    return Deps(
        registry=Registry(),
        events=events or FakeEvents(),
        vault=FakeVault(),
        clock=lambda: NOW,
        new_id=lambda: f"id{next(counter)}",
    )


async def opened(deps: Deps) -> None:
    await handle(OpenAccount(account_id="acme", owner="alice", email="a@x.io"), deps)


async def test_generate_keeps_the_secret_in_the_vault_only() -> None:
    deps = make_deps()
    await opened(deps)
    result = await handle(GenerateKey(account_id="acme", actor="alice"), deps)
    assert isinstance(result, KeyResult)
    assert deps.vault.rows[result.key_id][1] == result.key  # type: ignore[attr-defined]
    stored = b"".join(data for _, data in deps.events.messages)  # type: ignore[attr-defined]
    assert result.key.encode() not in stored


async def test_a_lost_race_reads_the_newer_event_and_decides_again() -> None:
    events = FakeEvents()
    mine, other = make_deps(events), make_deps(events)
    await opened(mine)
    other.registry.apply(1, json.loads(events.messages[0][1]))
    grant = GrantSuperAdmin(account_id="acme", actor="alice", user="bob", email="b@x.io")
    await handle(grant, other)  # appended behind `mine`'s back
    result = await handle(GenerateKey(account_id="acme", actor="alice"), mine)
    assert isinstance(result, KeyResult)
    assert [json.loads(d)["sequence"] for _, d in events.messages] == [1, 2, 3]
    assert mine.registry.state("acme").admins == {"alice", "bob"}


async def test_a_replica_that_has_not_seen_the_account_yet_does_not_refuse() -> None:
    events = FakeEvents()
    first, second = make_deps(events), make_deps(events)
    await opened(first)  # `second` has not followed the stream to it yet
    result = await handle(GenerateKey(account_id="acme", actor="alice"), second)
    assert isinstance(result, KeyResult)


class FollowerFirst(FakeEvents):
    """The follower applies the stream to `registry` just before a catch-up reads it."""

    registry: Registry | None = None

    async def read_subject(self, subject: str, after_seq: int) -> AsyncIterator[Stored]:
        assert self.registry is not None
        for seq, (_, data) in enumerate(self.messages, 1):
            self.registry.apply(seq, json.loads(data))
        async for item in super().read_subject(subject, self.registry.subject_seq[ACCOUNT]):
            yield item


async def test_a_refusal_is_decided_again_when_the_follower_brought_the_change() -> None:
    events = FollowerFirst()
    first, second = make_deps(events), make_deps(events)
    events.registry = second.registry
    await opened(first)  # `second` decides on its old view, then its follower catches up
    result = await handle(GenerateKey(account_id=ACCOUNT, actor="alice"), second)
    assert isinstance(result, KeyResult)


async def test_a_replica_that_has_not_seen_a_deactivate_generates_anyway() -> None:
    events = FakeEvents()
    first, second = make_deps(events), make_deps(events)
    await opened(first)
    await handle(GenerateKey(account_id="acme", actor="alice"), first)
    for seq, (_, data) in enumerate(events.messages, 1):
        second.registry.apply(seq, json.loads(data))
    await handle(DeactivateKey(account_id="acme", actor="alice", confirm=True), first)
    # `second` still sees the key active: its key_already_active is checked first
    result = await handle(GenerateKey(account_id="acme", actor="alice"), second)
    assert isinstance(result, KeyResult)
    assert [json.loads(d)["type"] for _, d in events.messages][-2:] == [
        "KeyDeactivated",
        "KeyGenerated",
    ]


async def test_a_conflicting_generate_removes_its_ciphertext() -> None:
    events = FakeEvents()
    first, second = make_deps(events), make_deps(events)
    await opened(first)
    second.registry.apply(1, json.loads(events.messages[0][1]))
    await handle(GenerateKey(account_id="acme", actor="alice"), first)
    with pytest.raises(DomainError) as refused:
        await handle(GenerateKey(account_id="acme", actor="alice"), second)
    assert refused.value.code == "key_already_active"
    assert second.vault.rows == {}  # type: ignore[attr-defined]


async def test_a_time_out_keeps_the_ciphertext_since_the_event_may_be_stored() -> None:
    events = FakeEvents(store_before_failing=True)
    deps = make_deps(events)
    await opened(deps)
    events.fail_next = TimeoutError()
    with pytest.raises(TimeoutError):
        await handle(GenerateKey(account_id="acme", actor="alice", command_id="g1"), deps)
    assert len(deps.vault.rows) == 1  # type: ignore[attr-defined]
    # the retry finds the stored event and answers with the key it made
    retry = await handle(GenerateKey(account_id="acme", actor="alice", command_id="g1"), deps)
    assert isinstance(retry, KeyResult)
    assert len(events.messages) == 2


async def test_a_retried_command_answers_the_same_and_appends_nothing() -> None:
    deps = make_deps()
    await opened(deps)
    command = GenerateKey(account_id="acme", actor="alice", command_id="same")
    first = await handle(command, deps)
    again = await handle(command, deps)
    assert first == again
    view = RevealKey(account_id="acme", actor="alice", command_id="v")
    await handle(view, deps)
    await handle(view, deps)
    assert len(deps.events.messages) == 3  # type: ignore[attr-defined]


async def test_rotation_and_deactivation_destroy_the_retired_ciphertext() -> None:
    deps = make_deps()
    await opened(deps)
    first = await handle(GenerateKey(account_id="acme", actor="alice"), deps)
    second = await handle(RotateKey(account_id="acme", actor="alice", confirm=True), deps)
    assert isinstance(first, KeyResult)
    assert isinstance(second, KeyResult)
    assert set(deps.vault.rows) == {second.key_id}  # type: ignore[attr-defined]
    await handle(DeactivateKey(account_id="acme", actor="alice", confirm=True), deps)
    assert deps.vault.rows == {}  # type: ignore[attr-defined]


async def test_a_refusal_appends_nothing() -> None:
    deps = make_deps()
    await opened(deps)
    with pytest.raises(DomainError):
        await handle(RotateKey(account_id="acme", actor="alice", confirm=True), deps)
    assert [s for s, _ in deps.events.messages] == [event_subject("acme")]  # type: ignore[attr-defined]
