"""The registry's user -> accounts index: kept by every path that folds events into it."""

from __future__ import annotations

from contracts.keys import GrantSuperAdmin, OpenAccount, RevokeSuperAdmin, event_subject
from services.keys.eventstore import Stored
from services.keys.follower import absorb
from services.keys.handlers import catch_up, handle
from services.keys.registry import Registry
from tests.unit.keys.test_handlers import make_deps


def admin_of(registry: Registry, user: str) -> dict[str, list[str]]:
    return {s.account_id: sorted(s.admins) for s in registry.accounts_of(user)}


def opened(account: str, owner: str) -> OpenAccount:
    return OpenAccount(account_id=account, owner=owner, email=f"{owner}@x.io")


def grant(account: str, actor: str, user: str) -> GrantSuperAdmin:
    return GrantSuperAdmin(account_id=account, actor=actor, user=user, email=f"{user}@x.io")


async def test_opening_granting_and_revoking_move_the_index() -> None:
    deps = make_deps()
    await handle(opened("zeta", "alice"), deps)
    await handle(opened("acme", "bob"), deps)
    assert admin_of(deps.registry, "alice") == {"zeta": ["alice"]}
    await handle(grant("acme", "bob", "alice"), deps)
    assert list(admin_of(deps.registry, "alice")) == ["acme", "zeta"]  # sorted by account
    assert admin_of(deps.registry, "bob") == {"acme": ["alice", "bob"]}
    await handle(RevokeSuperAdmin(account_id="acme", actor="alice", user="bob"), deps)
    assert admin_of(deps.registry, "bob") == {}
    assert admin_of(deps.registry, "alice") == {"acme": ["alice"], "zeta": ["alice"]}


async def test_a_user_nobody_granted_is_admin_of_nothing() -> None:
    deps = make_deps()
    await handle(opened("acme", "alice"), deps)
    assert deps.registry.accounts_of("mallory") == []


async def test_replay_and_catch_up_build_the_same_index_as_the_appending_replica() -> None:
    first = make_deps()
    await handle(opened("acme", "alice"), first)
    await handle(grant("acme", "alice", "bob"), first)
    await handle(RevokeSuperAdmin(account_id="acme", actor="bob", user="alice"), first)
    messages = first.events.messages  # type: ignore[attr-defined]
    replayed = Registry()
    for seq, (subject, data) in enumerate(messages, start=1):
        absorb(replayed, Stored(seq, subject, data), "a test replay")
    # the follower may deliver again what it delivered already: nothing moves twice
    absorb(replayed, Stored(2, *messages[1]), "a test replay")
    second = make_deps(first.events)  # type: ignore[arg-type]
    assert await catch_up("acme", second)
    for registry in (first.registry, replayed, second.registry):
        assert admin_of(registry, "bob") == {"acme": ["bob"]}
        assert admin_of(registry, "alice") == {}


async def test_events_of_other_kinds_leave_the_index_as_it_was() -> None:
    deps = make_deps()
    await handle(opened("acme", "alice"), deps)
    before = admin_of(deps.registry, "alice")
    deps.events.messages.append((event_subject("acme"), b"not an event"))  # type: ignore[attr-defined]
    await catch_up("acme", deps)
    assert admin_of(deps.registry, "alice") == before
