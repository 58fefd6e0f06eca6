"""Use cases of the keys service: load -> decide -> append -> apply -> reply."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from contracts import keyformat
from contracts.calendar import recommended_rotation
from contracts.envelope import Via, canonical_json, seal
from contracts.keys import (
    EVENT_VERSION,
    AccountEvent,
    AccountResult,
    DeactivateKey,
    DeactivateResult,
    KeyResult,
    OpenAccount,
    RevealKey,
    event_subject,
)
from contracts.replies import ErrorCode
from services.keys.binding import check_deadline, check_reuse, request_digest
from services.keys.domain import (
    AccountState,
    ActiveKey,
    DomainError,
    KeyCommand,
    NewKey,
    decide,
    evolve,
    key_age,
    needs_new_key,
)
from services.keys.eventstore import Conflict
from services.keys.follower import absorb
from services.keys.registry import Applied, Registry

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from nats.js import api
    from pydantic import BaseModel

MAX_ATTEMPTS = 8


class Events(Protocol):
    async def append(
        self, subject: str, data: bytes, *, expected_subject_seq: int, msg_id: str
    ) -> api.PubAck: ...

    def read_subject(self, subject: str, after_seq: int) -> Any: ...


class Secrets(Protocol):
    async def put(self, account_id: str, key_id: str, secret: str) -> None: ...
    async def get(self, account_id: str, key_id: str) -> str | None: ...
    async def destroy(self, key_id: str) -> None: ...


@dataclass
class Deps:
    registry: Registry
    events: Events
    vault: Secrets
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    new_secret: Callable[[], str] = keyformat.generate
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)


async def handle(command: KeyCommand, deps: Deps, via: Via | None = None) -> BaseModel:
    """Run one command; commands on one account queue behind each other in this process.

    via: the authenticated frontend it came through (recorded on its event, and part of the
    request its command id is bound to)."""
    request = _Request(command, via, request_digest(command, via))
    check_deadline(command, deps.clock())
    lock = deps.locks.setdefault(command.account_id, asyncio.Lock())
    async with lock:
        # the turn may come after the client gave up: then nothing runs (no unseen reveal)
        check_deadline(command, deps.clock())
        for _ in range(MAX_ATTEMPTS):
            # the account's position the decision below is based on (read with no await
            # between it and _attempt's own read of the state)
            seen = deps.registry.subject_seq.get(command.account_id, 0)
            try:
                return await _attempt(request, deps)
            except Conflict:
                await catch_up(command.account_id, deps)
            except DomainError:
                # decided on this replica's view, which can trail what another replica has
                # just appended (the account opened, the key deactivated a moment ago): a
                # refusal stands only once the account's stream has nothing newer than what
                # was decided on, whether the follower or the catch-up brought it in
                await catch_up(command.account_id, deps)
                if deps.registry.subject_seq.get(command.account_id, 0) == seen:
                    raise
    raise DomainError(ErrorCode.CONFLICT, "the account kept changing under this command; retry")


async def catch_up(account_id: str, deps: Deps) -> bool:
    """Read what other replicas appended to this account since we last saw it; any?

    A foreign message on the account's subject only moves its position (follower.absorb).
    """
    after = deps.registry.subject_seq.get(account_id, 0)
    found = False
    async for stored in deps.events.read_subject(event_subject(account_id), after):
        found = absorb(deps.registry, stored, "the keys service's catch-up") or found
    return found


@dataclass(frozen=True, slots=True)
class _Request:
    command: KeyCommand
    via: Via | None
    digest: str


async def _attempt(request: _Request, deps: Deps) -> BaseModel:
    command = request.command
    account_id = command.account_id
    done = deps.registry.applied(account_id, command.command_id)
    if done is not None:
        check_reuse(command, request.digest, done)
        return await _replayed(command, done, deps)
    # state and its concurrency token are read together, before any await can move them
    state = deps.registry.state(account_id)
    expected = deps.registry.subject_seq.get(account_id, 0)
    now = deps.clock()
    secret = deps.new_secret() if needs_new_key(command) else None
    new_key = _describe(secret, deps.new_id()) if secret else None
    event = decide(command, state, now=now, new_key=new_key)
    raw = _envelope(request, state, event, now, deps.new_id())
    if secret and new_key:
        await deps.vault.put(account_id, new_key.key_id, secret)
    try:
        ack = await deps.events.append(
            event_subject(account_id),
            canonical_json(raw),
            expected_subject_seq=expected,
            msg_id=f"{account_id}:{command.command_id}",
        )
    except Conflict:
        # certainly not appended; on any other failure (a time-out) the event may be
        # stored, so the ciphertext stays: an orphan row is harmless, a lost live key is not
        if new_key:
            await deps.vault.destroy(new_key.key_id)
        raise
    if ack.duplicate:
        # another replica appended this very command first: answer as that one did
        if new_key:
            await deps.vault.destroy(new_key.key_id)
        raise Conflict(account_id)
    deps.registry.apply(ack.seq, raw)  # verification sees the change before anyone is told
    # the reply describes the state right after *this* event, even if other replicas'
    # events reach the registry while we await below
    after = evolve(
        state,
        event,
        sequence=raw["sequence"],
        occurred_at=now,
        actor=raw["actor"],
        event_hash=raw["hash"],
    )
    old_key = getattr(event, "old_key_id", None) or (
        state.active.key_id if isinstance(command, DeactivateKey) and state.active else None
    )
    if old_key:
        await deps.vault.destroy(old_key)
    done = Applied.of(event, now, raw["actor"], request.digest)
    return await _result(command, after, done, deps, secret=secret)


async def _replayed(command: KeyCommand, done: Applied, deps: Deps) -> BaseModel:
    """A retry of a command that already took effect: same answer, no second event."""
    state = deps.registry.state(command.account_id)
    actor = getattr(command, "actor", None)
    if actor is not None and actor not in state.admins:
        raise DomainError(ErrorCode.NOT_AUTHORIZED, f"{actor} is not a super-admin")
    if done.event_type in ("KeyGenerated", "KeyRotated", "KeyViewed") and (
        state.active is None or state.active.key_id != done.key_id
    ):
        raise DomainError(
            ErrorCode.KEY_UNAVAILABLE, "that command's key has been rotated or deactivated"
        )
    return await _result(command, state, done, deps, secret=None)


async def _result(
    command: KeyCommand, state: AccountState, done: Applied, deps: Deps, *, secret: str | None
) -> BaseModel:
    """The reply, from the state after the command's event and what the event recorded."""
    if isinstance(command, DeactivateKey):
        return DeactivateResult(
            account_id=state.account_id, key_id=done.key_id or "", deactivated_at=done.occurred_at
        )
    if state.active is None or not (needs_new_key(command) or isinstance(command, RevealKey)):
        return AccountResult(account_id=state.account_id, super_admins=sorted(state.admins))
    if secret is None:
        secret = await deps.vault.get(state.account_id, state.active.key_id)
        if secret is None:
            raise DomainError(ErrorCode.KEY_UNAVAILABLE, "the key is not in the vault")
    result = key_result(state, state.active, secret, deps.clock())
    if done.previous_key_id:
        result = result.model_copy(
            update={
                "previous_key_id": done.previous_key_id,
                "previous_key_grace_until": done.grace_until,
            }
        )
    return result


def key_result(state: AccountState, active: ActiveKey, secret: str, now: datetime) -> KeyResult:
    return KeyResult(
        account_id=state.account_id,
        key=secret,
        key_id=active.key_id,
        hint=active.hint,
        created_at=active.in_use_since,
        age_seconds=int(key_age(active, now).total_seconds()),
        recommended_rotation_at=recommended_rotation(active.in_use_since),
    )


def _describe(secret: str, key_id: str) -> NewKey:
    return NewKey(
        key_id=f"key_{key_id}",
        hint=keyformat.hint(secret),
        fingerprint=keyformat.fingerprint(secret),
    )


def _envelope(
    request: _Request, state: AccountState, event: AccountEvent, now: datetime, event_id: str
) -> dict[str, Any]:
    command = request.command
    actor = command.owner if isinstance(command, OpenAccount) else command.actor
    return seal(
        event_id=event_id,
        type=event.kind,
        version=EVENT_VERSION,
        stream_id=state.account_id,
        sequence=state.version + 1,
        occurred_at=now,
        actor=actor,
        correlation_id=command.correlation_id or command.command_id,
        causation_id=command.command_id,
        prev_hash=state.last_hash,
        payload=event.model_dump(mode="json"),
        via=request.via.model_dump(mode="json") if request.via else None,
        request_digest=request.digest,
    )
