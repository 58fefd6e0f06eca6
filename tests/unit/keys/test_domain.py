"""Given events, when a command, then one event or a refusal: the account aggregate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from contracts.calendar import recommended_rotation
from contracts.keys import (
    AccountOpened,
    DeactivateKey,
    GenerateKey,
    GrantSuperAdmin,
    KeyDeactivated,
    KeyGenerated,
    KeyRotated,
    KeyViewed,
    OpenAccount,
    RevealKey,
    RevokeSuperAdmin,
    RotateKey,
    SuperAdminGranted,
    SuperAdminRevoked,
)
from services.keys.domain import (
    AccountState,
    DomainError,
    NewKey,
    decide,
    evolve,
    key_age,
)

if TYPE_CHECKING:
    from contracts.replies import ErrorCode

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
FRESH = NewKey(key_id="key_new", hint="klk_…new1", fingerprint="ab" * 32)
OPENED = AccountOpened(owner="alice", owner_email="alice@example.com")
GENERATED = KeyGenerated(key_id="key_1", hint="klk_…one1", fingerprint="cd" * 32)
BOB_GRANTED = SuperAdminGranted(user="bob", email="bob@example.com")


def given(*events: object, at: datetime = T0, actor: str = "alice") -> AccountState:
    state = AccountState(account_id="acme")
    for n, event in enumerate(events, start=1):
        state = evolve(state, event, sequence=n, occurred_at=at, actor=actor, event_hash=f"h{n}")  # type: ignore[arg-type]
    return state


def refused(command: object, state: AccountState) -> ErrorCode:
    with pytest.raises(DomainError) as caught:
        decide(command, state, now=T0, new_key=FRESH)  # type: ignore[arg-type]
    return caught.value.code


def test_opening_an_account_makes_its_owner_the_super_admin() -> None:
    event = decide(OpenAccount(account_id="acme", owner="alice", email="a@x.io"), given(), now=T0)
    state = given(event)
    assert event == AccountOpened(owner="alice", owner_email="a@x.io")
    assert state.opened
    assert state.admins == {"alice"}


@pytest.mark.parametrize(
    ("history", "command", "code"),
    [
        ((OPENED,), OpenAccount(account_id="acme", owner="x", email="x@y.z"), "account_exists"),
        ((), GenerateKey(account_id="acme", actor="alice"), "unknown_account"),
        ((), RevealKey(account_id="acme", actor="alice"), "unknown_account"),
        ((OPENED,), GenerateKey(account_id="acme", actor="mallory"), "not_authorized"),
        ((OPENED, GENERATED), RevealKey(account_id="acme", actor="mallory"), "not_authorized"),
        (
            (OPENED, GENERATED),
            RotateKey(account_id="acme", actor="mallory", confirm=True),
            "not_authorized",
        ),
        (
            (OPENED, GENERATED),
            DeactivateKey(account_id="acme", actor="mallory", confirm=True),
            "not_authorized",
        ),
        (
            (OPENED,),
            GrantSuperAdmin(account_id="acme", actor="mallory", user="m", email="m@x.io"),
            "not_authorized",
        ),
        (
            (OPENED,),
            RevokeSuperAdmin(account_id="acme", actor="bob", user="alice"),
            "not_authorized",
        ),
        ((OPENED, GENERATED), GenerateKey(account_id="acme", actor="alice"), "key_already_active"),
        ((OPENED,), RevealKey(account_id="acme", actor="alice"), "no_active_key"),
        ((OPENED,), RotateKey(account_id="acme", actor="alice", confirm=True), "no_active_key"),
        ((OPENED,), DeactivateKey(account_id="acme", actor="alice", confirm=True), "no_active_key"),
        ((OPENED, GENERATED), RotateKey(account_id="acme", actor="alice"), "confirmation_required"),
        (
            (OPENED, GENERATED),
            DeactivateKey(account_id="acme", actor="alice"),
            "confirmation_required",
        ),
        (
            (OPENED,),
            GrantSuperAdmin(account_id="acme", actor="alice", user="alice", email="a@x.io"),
            "already_super_admin",
        ),
        (
            (OPENED,),
            RevokeSuperAdmin(account_id="acme", actor="alice", user="bob"),
            "not_super_admin",
        ),
        (
            (OPENED,),
            RevokeSuperAdmin(account_id="acme", actor="alice", user="alice"),
            "last_super_admin",
        ),
        (
            (OPENED, BOB_GRANTED, SuperAdminRevoked(user="bob")),
            GenerateKey(account_id="acme", actor="bob"),
            "not_authorized",
        ),
        (
            (OPENED, GENERATED, KeyDeactivated(key_id="key_1")),
            RevealKey(account_id="acme", actor="alice"),
            "no_active_key",
        ),
    ],
)
def test_refusals_carry_a_stable_code(
    history: tuple[object, ...], command: object, code: str
) -> None:
    assert refused(command, given(*history)) == code


def test_a_super_admin_generates_a_key_when_none_is_active() -> None:
    event = decide(
        GenerateKey(account_id="acme", actor="alice"), given(OPENED), now=T0, new_key=FRESH
    )
    assert event == KeyGenerated(key_id="key_new", hint="klk_…new1", fingerprint="ab" * 32)


def test_a_key_can_be_generated_again_after_deactivation() -> None:
    state = given(OPENED, GENERATED, KeyDeactivated(key_id="key_1"))
    event = decide(GenerateKey(account_id="acme", actor="alice"), state, now=T0, new_key=FRESH)
    assert isinstance(event, KeyGenerated)


def test_a_granted_super_admin_may_act_and_revoking_them_leaves_the_owner() -> None:
    state = given(OPENED, BOB_GRANTED)
    assert isinstance(
        decide(
            RevealKey(account_id="acme", actor="bob"), given(OPENED, BOB_GRANTED, GENERATED), now=T0
        ),
        KeyViewed,
    )
    event = decide(RevokeSuperAdmin(account_id="acme", actor="bob", user="bob"), state, now=T0)
    assert event == SuperAdminRevoked(user="bob")
    assert given(OPENED, BOB_GRANTED, event).admins == {"alice"}


def test_reveal_records_a_view_of_the_active_key() -> None:
    event = decide(RevealKey(account_id="acme", actor="alice"), given(OPENED, GENERATED), now=T0)
    assert event == KeyViewed(key_id="key_1", hint="klk_…one1")


def test_rotation_replaces_the_key_and_restarts_its_clock() -> None:
    later = T0 + timedelta(days=200)
    command = RotateKey(account_id="acme", actor="alice", confirm=True)
    event = decide(command, given(OPENED, GENERATED), now=later, new_key=FRESH)
    assert event == KeyRotated(
        old_key_id="key_1", new_key_id="key_new", hint="klk_…new1", fingerprint="ab" * 32
    )
    state = evolve(
        given(OPENED, GENERATED), event, sequence=3, occurred_at=later, actor="bob", event_hash="h3"
    )
    assert state.active is not None
    assert (state.active.key_id, state.active.in_use_since, state.active.created_by) == (
        "key_new",
        later,
        "bob",
    )


def test_rotation_with_grace_records_until_when_the_old_key_still_works() -> None:
    command = RotateKey(account_id="acme", actor="alice", confirm=True, grace_seconds=3600)
    event = decide(command, given(OPENED, GENERATED), now=T0, new_key=FRESH)
    assert isinstance(event, KeyRotated)
    assert event.grace_until == T0 + timedelta(hours=1)


def test_deactivation_leaves_the_account_without_a_key() -> None:
    command = DeactivateKey(account_id="acme", actor="alice", confirm=True)
    event = decide(command, given(OPENED, GENERATED), now=T0)
    assert event == KeyDeactivated(key_id="key_1", hint="klk_…one1")
    assert given(OPENED, GENERATED, event).active is None


def test_evolve_tracks_version_and_hash_of_the_last_event() -> None:
    state = given(OPENED, GENERATED, KeyViewed(key_id="key_1"))
    assert (state.version, state.last_hash) == (3, "h3")


def test_a_refused_command_leaves_the_state_as_it_was() -> None:
    state = given(OPENED, GENERATED)
    refused(RotateKey(account_id="acme", actor="alice"), state)
    assert state == given(OPENED, GENERATED)


@pytest.mark.parametrize(
    ("in_use_since", "recommended"),
    [
        (datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 7, 15, tzinfo=UTC)),
        (datetime(2026, 8, 31, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2027, 8, 31, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), datetime(2027, 6, 30, 23, 59, tzinfo=UTC)),
        (datetime(2026, 7, 31, tzinfo=UTC), datetime(2027, 1, 31, tzinfo=UTC)),
    ],
)
def test_recommended_rotation_is_six_calendar_months_later(
    in_use_since: datetime, recommended: datetime
) -> None:
    assert recommended_rotation(in_use_since) == recommended


def test_age_is_never_negative() -> None:
    state = given(OPENED, GENERATED, at=T0)
    assert state.active is not None
    assert key_age(state.active, T0 - timedelta(seconds=5)) == timedelta(0)
    assert key_age(state.active, T0 + timedelta(days=3)) == timedelta(days=3)
