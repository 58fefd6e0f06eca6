"""KEYS events for bench/verify.py, built exactly as services.keys.handlers._envelope does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts import keyformat
from contracts.envelope import GENESIS_HASH, canonical_json, chain_hash
from contracts.keys import EVENT_VERSION, AccountOpened, KeyGenerated, KeyViewed, event_subject


@dataclass(slots=True)
class Account:
    """One account the bench opened: its key in clear, and where its hash chain stands."""

    account_id: str
    owner: str
    key: str
    key_id: str
    version: int = 0
    last_hash: str = GENESIS_HASH


def new_account(index: int) -> Account:
    return Account(
        account_id=f"acct-{index:07d}",
        owner=f"owner-{index:07d}",
        key=keyformat.generate(),
        key_id=f"key_{uuid.uuid4().hex}",
    )


def payload_for(account: Account, step: int) -> dict[str, Any]:
    """Per account: AccountOpened, KeyGenerated, then KeyViewed for every further event."""
    event: AccountOpened | KeyGenerated | KeyViewed
    if step == 0:
        event = AccountOpened(owner=account.owner, owner_email=f"{account.owner}@example.com")
    elif step == 1:
        event = KeyGenerated(
            key_id=account.key_id,
            hint=keyformat.hint(account.key),
            fingerprint=keyformat.fingerprint(account.key),
        )
    else:
        event = KeyViewed(key_id=account.key_id, hint=keyformat.hint(account.key))
    return event.model_dump(mode="json")


def envelope(account: Account, payload: dict[str, Any]) -> dict[str, Any]:
    """The stored event: same fields, per-account sequence and hash chain as handlers._envelope."""
    command_id = str(uuid.uuid4())  # what a client's command carries by default
    raw: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "type": payload["kind"],
        "version": EVENT_VERSION,
        "stream_id": account.account_id,
        "sequence": account.version + 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "actor": account.owner,  # the owner opened the account and is its super-admin
        "correlation_id": command_id,
        "causation_id": command_id,
        "prev_hash": account.last_hash,
        "payload": payload,
    }
    raw["hash"] = chain_hash(raw)
    account.version += 1
    account.last_hash = raw["hash"]
    return raw


def build_block(
    first: int, count: int, per_account: int
) -> tuple[list[Account], list[tuple[str, bytes]]]:
    """Accounts first..first+count-1 and their events, step-major (all opens, then all keys...).

    Published in this order on one connection, every account's events reach the stream in
    its own sequence order, interleaved with other accounts' as in real traffic.
    """
    accounts = [new_account(i) for i in range(first, first + count)]
    events = [
        (event_subject(a.account_id), canonical_json(envelope(a, payload_for(a, step))))
        for step in range(per_account)
        for a in accounts
    ]
    return accounts, events


def build_views(
    accounts: list[Account], views: int
) -> tuple[list[Account], list[tuple[str, bytes]]]:
    """`views` more KeyViewed events for each account, continuing its chain, step-major."""
    events = [
        (event_subject(a.account_id), canonical_json(envelope(a, payload_for(a, 2))))
        for _ in range(views)
        for a in accounts
    ]
    return accounts, events
