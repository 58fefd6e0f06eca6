"""The registry snapshot's row format: an account's state and keys, a remembered command."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import orjson

from services.keys.fastfold import build_active, build_change, build_state
from services.keys.registry import Applied, IndexEntry

if TYPE_CHECKING:
    from collections.abc import Iterable

    from services.keys.domain import AccountState

# what the rows mean: bump it whenever their encoding or what the registry holds changes
# (tests/unit/keys/test_snapshot_rows.py fails until the fields below are all accounted for),
# and every replica falls back to a full replay once, then writes the new form
SCHEMA = 1
ACCOUNT_FIELDS = (
    "account_id",
    "version",
    "last_hash",
    "opened",
    "admins",
    "active",
    "key_change",
)
ENTRY_FIELDS = ("digest", "account_id", "key_id", "status", "grace_until", "valid_reply")
APPLIED_FIELDS = (
    "event_type",
    "key_id",
    "occurred_at",
    "previous_key_id",
    "grace_until",
    "actor",
    "digest",
    "stream_seq",
)


_loads, _fromiso, _fromhex = orjson.loads, datetime.fromisoformat, bytes.fromhex


def _iso(moment: datetime | None) -> str | None:
    # isoformat, not microseconds: it reads back with the offset it was folded with
    return None if moment is None else moment.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def encode_account(state: AccountState | None, entries: Iterable[IndexEntry]) -> str | None:
    """The account's state and its keys (in the order they were made) as compact JSON;
    None for a subject that holds no event of the account, only skipped messages."""
    if state is None:
        return None
    active, change = state.active, state.key_change
    since = active and active.in_use_since.isoformat()
    return orjson.dumps(
        [
            state.version,
            state.last_hash,
            state.opened,
            sorted(state.admins),
            active and [active.key_id, active.hint, active.fingerprint, since, active.created_by],
            # the last change is mostly the event that made the active key: its time once
            change
            and [
                change.action,
                change.actor,
                None if change.at.isoformat() == since else change.at.isoformat(),
            ],
            # the verification index knows keys by sha-256 only: the secret is never here
            [[e.key_id, e.digest.hex(), e.status, _iso(e.grace_until)] for e in entries],
        ]
    ).decode()


def decode_account(account_id: str, text: str) -> tuple[AccountState, list[IndexEntry]]:
    # one account per row and 200,000 rows at a start: every call here counts
    version, last_hash, opened, admins, active, change, keys = _loads(text)
    since = None
    if active is not None:
        since = _fromiso(active[3])
        active = build_active(active[0], active[1], active[2], since, active[4])
    if change is not None:
        at = change[2]
        change = build_change(
            change[0], change[1], _fromiso(at) if at is not None or since is None else since
        )
    state = build_state(account_id, version, last_hash, opened, frozenset(admins), active, change)
    entries = [
        IndexEntry(_fromhex(digest), account_id, key_id, status, grace and _fromiso(grace))
        for key_id, digest, status, grace in keys
    ]
    return state, entries


def encode_applied(done: Applied) -> str:
    return orjson.dumps(
        [
            done.event_type,
            done.key_id,
            done.occurred_at.isoformat(),
            done.previous_key_id,
            _iso(done.grace_until),
            done.actor,
            done.digest,
        ]
    ).decode()


def decode_applied(text: str, stream_seq: int) -> Applied:
    kind, key_id, occurred_at, previous, grace, actor, digest = orjson.loads(text)
    return Applied(
        kind,
        key_id,
        datetime.fromisoformat(occurred_at),
        previous,
        _time(grace),
        actor,
        digest,
        stream_seq,
    )
