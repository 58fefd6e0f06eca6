"""The KEYS projection: active keys, people and admins, folded per batch and written at once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.envelope import GENESIS_HASH
from contracts.keys import (
    ACCOUNT_ID,
    KEYS_STREAM,
    AccountEvent,
    AccountOpened,
    KeyDeactivated,
    KeyGenerated,
    KeyRotated,
    SuperAdminGranted,
    SuperAdminRevoked,
    event_subject,
)
from contracts.stored import chain_problem
from services.common import tracking as tracking_row
from services.common.eventlog import reason, skipped
from services.notifier.domain import FIRST_EMAIL, due_at
from services.notifier.store import heads, keys, people, tracking

# The tracking row's name. 0001's projection, which did not check chains, tracked itself as
# `notifier-keys`: under a new name this one starts at 0 on a database migrated from 0001
# and rebuilds its rows from KEYS (see project), while notifiers of the previous release
# still running during a rolling upgrade go on with their own row.
PROJECTION = "notifier-keys-chained"
READER = "projection notifier-keys"  # the durable, as the skipped-message log names it
_events: TypeAdapter[AccountEvent] = TypeAdapter(AccountEvent)
_account_id = re.compile(ACCOUNT_ID)
Batch = list[tuple[int, dict[str, Any] | None]]
Head = tuple[int, str]  # an account's last event applied: its sequence and hash
GENESIS: Head = (0, GENESIS_HASH)
IN_CHUNK = 500  # account ids per IN (...): SQLite allows 999 bound parameters in old builds


@dataclass
class Fold:
    """A batch's net effect: per account, the key row to write or the key to drop, and the
    head its chain reached."""

    heads: dict[str, Head] = field(default_factory=dict)  # loaded before, moved by apply
    keys: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # account -> deactivated key id
    people: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    revoked: set[tuple[str, str]] = field(default_factory=set)
    moved: set[str] = field(default_factory=set)  # accounts whose head moved

    def apply(self, raw: dict[str, Any]) -> str | None:
        """Apply the account's next event; else why it is not that, and change nothing.

        What the keys service takes (services/keys/follower.absorb) and nothing else: an
        event that continues the chain, whose payload validates and whose time parses;
        KeyViewed too, though nothing here depends on it, or the heads would part ways.
        """
        account = str(raw["stream_id"])
        if _account_id.fullmatch(account) is None:  # no account the service can have opened
            return "its stream_id is not an account id"
        why = chain_problem(raw, *self.heads.get(account, GENESIS))
        if why is not None:
            return why
        event = _events.validate_python(raw["payload"])
        since = datetime.fromisoformat(raw["occurred_at"]).astimezone(UTC)
        self._fold(account, event, since, raw)
        self.heads[account] = (raw["sequence"], raw["hash"])
        self.moved.add(account)
        return None

    def _fold(
        self, account: str, event: AccountEvent, since: datetime, raw: dict[str, Any]
    ) -> None:
        match event:
            case (
                AccountOpened(owner=user, owner_email=email)
                | SuperAdminGranted(user=user, email=email)
            ):
                self.people[(account, user)] = {"email": email, "admin": True}
                self.revoked.discard((account, user))
            case SuperAdminRevoked(user=user):
                if (account, user) in self.people:
                    self.people[(account, user)]["admin"] = False
                else:
                    self.revoked.add((account, user))
            case KeyGenerated(key_id=key_id, hint=hint) | KeyRotated(new_key_id=key_id, hint=hint):
                self.keys[account] = _key_row(account, key_id, hint, since, raw)
                self.dropped.pop(account, None)
            case KeyDeactivated(key_id=key_id):
                pending = self.keys.get(account)
                if pending is not None and pending["key_id"] == key_id:
                    self.keys[account] = None  # generated and deactivated in this batch
                elif account not in self.keys:
                    self.dropped[account] = key_id


def _key_row(
    account: str, key_id: str, hint: str, since: datetime, raw: dict[str, Any]
) -> dict[str, Any]:
    return {
        "account_id": account,
        "key_id": key_id,
        "hint": hint,
        "in_use_since": since,
        "last_creator": str(raw["actor"]),
        "source_event_id": str(raw["event_id"]),
        "next_months": FIRST_EMAIL,
        "next_due_at": due_at(since, FIRST_EMAIL),
    }


def fold(batch: Batch, last: int, known: dict[str, Head]) -> tuple[Fold, int]:
    """Fold events after `last` onto the accounts' heads; any that is not its account's next
    event, or cannot be applied, is reported once and skipped."""
    folded, applied = Fold(heads=known), 0
    for stream_seq, raw in batch:
        # None: not an event of its subject's account, reported once by the projector
        if stream_seq <= last or raw is None:
            continue
        try:
            why = folded.apply(raw)
        except (ValidationError, ValueError, KeyError, TypeError, AttributeError) as exc:
            why = reason(exc)
        if why is None:
            applied += 1
        else:
            subject = event_subject(str(raw.get("stream_id")))
            skipped(KEYS_STREAM.name, stream_seq, subject, why, READER)
    return folded, applied


async def project(engine: AsyncEngine, batch: Batch) -> int:
    """Apply a batch, the heads it moved and the tracking row in one transaction; returns
    events applied. Replicas take turns (services/common/projector.py), and a batch at or
    below the tracking row changes nothing: each event is applied once."""
    async with engine.begin() as conn:
        last = await tracking_row.last_seq(conn, tracking, PROJECTION)
        if last == 0:
            # from the stream's start, this projection owns every row: what an earlier
            # release left (a database migrated from 0001) is rebuilt, never mixed in
            for table in (keys, people, heads):
                await conn.execute(delete(table))
        accounts = {str(raw["stream_id"]) for seq, raw in batch if raw is not None and seq > last}
        folded, applied = fold(batch, last, await _heads(conn, sorted(accounts)))
        await _write(conn, folded)
        await tracking_row.advance(conn, tracking, PROJECTION, last, [seq for seq, _ in batch])
        return applied


async def _heads(conn: AsyncConnection, accounts: list[str]) -> dict[str, Head]:
    found: dict[str, Head] = {}
    for start in range(0, len(accounts), IN_CHUNK):
        chunk = accounts[start : start + IN_CHUNK]
        rows = await conn.execute(
            select(heads.c.account_id, heads.c.sequence, heads.c.hash).where(
                heads.c.account_id.in_(chunk)
            )
        )
        found.update((a, (int(n), str(h))) for a, n, h in rows)
    return found


async def _write(conn: AsyncConnection, folded: Fold) -> None:
    """People first, then revocations of people seen in earlier batches, then keys."""
    if folded.people:
        # sorted: the lock order every writer of these rows follows (no deadlocks on PostgreSQL)
        rows = [{"account_id": a, "user": u, **v} for (a, u), v in sorted(folded.people.items())]
        await conn.execute(_replace(conn, people, ["account_id", "user"]), rows)
    if folded.revoked:
        await conn.execute(
            update(people)
            .where(people.c.account_id == bindparam("a"), people.c.user == bindparam("u"))
            .values(admin=False),
            [{"a": a, "u": u} for a, u in folded.revoked],
        )
    gone = [a for a, row in folded.keys.items() if row is None]
    if gone:
        await conn.execute(delete(keys).where(keys.c.account_id.in_(gone)))
    if folded.dropped:
        await conn.execute(
            delete(keys).where(
                keys.c.account_id == bindparam("a"), keys.c.key_id == bindparam("k")
            ),
            [{"a": a, "k": k} for a, k in folded.dropped.items()],
        )
    rows = [row for _, row in sorted(folded.keys.items()) if row is not None]
    if rows:
        await conn.execute(_replace(conn, keys, ["account_id"]), rows)
    moved = [
        {"account_id": a, "sequence": folded.heads[a][0], "hash": folded.heads[a][1]}
        for a in sorted(folded.moved)
    ]
    if moved:
        await conn.execute(_replace(conn, heads, ["account_id"]), moved)


def _replace(conn: AsyncConnection, table: Table, key: list[str]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE every other column from the new row."""
    stmt = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    others = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in key}
    return stmt.on_conflict_do_update(index_elements=key, set_=others)


async def position(engine: AsyncEngine) -> int:
    """The last stream sequence applied."""
    return await tracking_row.position(engine, tracking, PROJECTION)
