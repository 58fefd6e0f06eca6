"""Pure account aggregate: state, decide (command -> event) and evolve (state, event -> state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts.calendar import recommended_rotation
from contracts.envelope import GENESIS_HASH
from contracts.keys import (
    AccountEvent,
    AccountOpened,
    DeactivateKey,
    GenerateKey,
    GrantSuperAdmin,
    KeyDeactivated,
    KeyGenerated,
    KeyRotated,
    KeyViewed,
    LiveKey,
    OpenAccount,
    RevealKey,
    RevokeSuperAdmin,
    RotateKey,
    SuperAdminGranted,
    SuperAdminRevoked,
)
from contracts.replies import ErrorCode
from services.common.errors import Refused

KeyCommand = (
    OpenAccount
    | GrantSuperAdmin
    | RevokeSuperAdmin
    | GenerateKey
    | RevealKey
    | RotateKey
    | DeactivateKey
)


class DomainError(Refused):
    """A refused command: `code` is the stable reply code, the message is for people."""


@dataclass(frozen=True, slots=True)
class NewKey:
    """What the domain may know of a freshly generated key: never the secret itself."""

    key_id: str
    hint: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class ActiveKey:
    key_id: str
    hint: str
    fingerprint: str
    in_use_since: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class KeyChange:
    """The last change of the live key: what a superseded command is told."""

    action: str  # generated | rotated | deactivated
    actor: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AccountState:
    account_id: str
    version: int = 0
    last_hash: str = GENESIS_HASH
    opened: bool = False
    admins: frozenset[str] = field(default_factory=frozenset)
    active: ActiveKey | None = None
    key_change: KeyChange | None = None


def key_age(active: ActiveKey, now: datetime) -> timedelta:
    return max(now - active.in_use_since, timedelta(0))


def decide(
    command: KeyCommand,
    state: AccountState,
    *,
    now: datetime,
    new_key: NewKey | None = None,
) -> AccountEvent:
    """The one event a valid command produces; raises DomainError and produces nothing otherwise."""
    if isinstance(command, OpenAccount):
        if state.opened:
            raise DomainError(ErrorCode.ACCOUNT_EXISTS, f"account {state.account_id} exists")
        return AccountOpened(owner=command.owner, owner_email=command.email)
    if not state.opened:
        raise DomainError(ErrorCode.UNKNOWN_ACCOUNT, f"no account {state.account_id}")
    if command.actor not in state.admins:
        raise DomainError(
            ErrorCode.NOT_AUTHORIZED,
            f"{command.actor} is not a super-admin of account {state.account_id}",
        )
    match command:
        case GrantSuperAdmin(user=user, email=email):
            if user in state.admins:
                raise DomainError(ErrorCode.ALREADY_SUPER_ADMIN, f"{user} is a super-admin already")
            return SuperAdminGranted(user=user, email=email)
        case RevokeSuperAdmin(user=user):
            if user not in state.admins:
                raise DomainError(ErrorCode.NOT_SUPER_ADMIN, f"{user} is not a super-admin")
            if state.admins == {user}:
                raise DomainError(
                    ErrorCode.LAST_SUPER_ADMIN, "the last super-admin of an account cannot go"
                )
            return SuperAdminRevoked(user=user)
        case GenerateKey():
            if state.active is not None:
                raise DomainError(
                    ErrorCode.KEY_ALREADY_ACTIVE, "the account has an active key: rotate it instead"
                )
            fresh = _require(new_key)
            return KeyGenerated(key_id=fresh.key_id, hint=fresh.hint, fingerprint=fresh.fingerprint)
        case RevealKey():
            active = _active(state)
            return KeyViewed(key_id=active.key_id, hint=active.hint)
        case RotateKey(confirm=confirm, grace_seconds=grace, expected_key_id=expected):
            _confirmed(confirm, "rotate")
            _still_live(state, expected)
            old = _active(state)
            fresh = _require(new_key)
            return KeyRotated(
                old_key_id=old.key_id,
                new_key_id=fresh.key_id,
                hint=fresh.hint,
                fingerprint=fresh.fingerprint,
                grace_until=now + timedelta(seconds=grace) if grace else None,
            )
        case DeactivateKey(confirm=confirm, expected_key_id=expected):
            _confirmed(confirm, "deactivate")
            _still_live(state, expected)
            active = _active(state)
            return KeyDeactivated(key_id=active.key_id, hint=active.hint)
    raise AssertionError(f"unhandled command {type(command).__name__}")  # pragma: no cover


def evolve(
    state: AccountState,
    event: AccountEvent,
    *,
    sequence: int,
    occurred_at: datetime,
    actor: str,
    event_hash: str,
) -> AccountState:
    """Apply one stored event; envelope facts come in as arguments so this stays pure."""
    # one constructor call per event: replay folds millions of these
    opened, admins, active, change = state.opened, state.admins, state.active, state.key_change
    match event:
        case AccountOpened(owner=owner):
            opened, admins = True, frozenset({owner})
        case SuperAdminGranted(user=user):
            admins = admins | {user}
        case SuperAdminRevoked(user=user):
            admins = admins - {user}
        case KeyGenerated(key_id=key_id, hint=hint, fingerprint=fp):
            active = ActiveKey(key_id, hint, fp, occurred_at, actor)
            change = KeyChange("generated", actor, occurred_at)
        case KeyRotated(new_key_id=key_id, hint=hint, fingerprint=fp):
            active = ActiveKey(key_id, hint, fp, occurred_at, actor)
            change = KeyChange("rotated", actor, occurred_at)
        case KeyDeactivated():
            active = None
            change = KeyChange("deactivated", actor, occurred_at)
        case KeyViewed():
            pass
        case _:  # pragma: no cover
            raise AssertionError(f"unhandled event {type(event).__name__}")
    return AccountState(state.account_id, sequence, event_hash, opened, admins, active, change)


def live_key(state: AccountState) -> LiveKey:
    """The live key as a person sees it before acting on it: no secret, no view recorded."""
    if not state.opened:
        raise DomainError(ErrorCode.UNKNOWN_ACCOUNT, f"no account {state.account_id}")
    active = _active(state)
    return LiveKey(
        account_id=state.account_id,
        key_id=active.key_id,
        hint=active.hint,
        created_at=active.in_use_since,
        created_by=active.created_by,
        recommended_rotation_at=recommended_rotation(active.in_use_since),
    )


def needs_new_key(command: KeyCommand) -> bool:
    return isinstance(command, GenerateKey | RotateKey)


def _active(state: AccountState) -> ActiveKey:
    if state.active is None:
        raise DomainError(ErrorCode.NO_ACTIVE_KEY, f"account {state.account_id} has no active key")
    return state.active


def _still_live(state: AccountState, expected: str | None) -> None:
    """If-Match for keys: None means "whatever key is live" (what commands meant before)."""
    if expected is None or (state.active is not None and state.active.key_id == expected):
        return
    change = state.key_change
    how = f"{change.action} by {change.actor} at {_at(change)}" if change else ""
    if state.active is not None:
        now = f"{state.active.key_id} replaced it ({how})"
    elif change is not None:
        now = f"the account has no live key ({how})"
    else:
        now = "the account has no live key"
    raise DomainError(
        ErrorCode.SUPERSEDED, f"key {expected} is no longer the live key: {now}; nothing changed"
    )


def _at(change: KeyChange) -> str:
    return change.at.isoformat().replace("+00:00", "Z")


def _confirmed(confirm: bool, verb: str) -> None:
    if not confirm:
        raise DomainError(
            ErrorCode.CONFIRMATION_REQUIRED, f"{verb} needs explicit confirmation (confirm=true)"
        )


def _require(new_key: NewKey | None) -> NewKey:
    if new_key is None:
        raise ValueError("this command needs a freshly generated key")
    return new_key
