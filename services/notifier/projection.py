"""The KEYS projection: active keys, people and admins, folded per batch and written at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Table, bindparam, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.keys import (
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
from services.common import tracking as tracking_row
from services.common.eventlog import reason, skipped
from services.notifier.domain import FIRST_EMAIL, due_at
from services.notifier.store import keys, people, tracking

PROJECTION = "notifier-keys"
_events: TypeAdapter[AccountEvent] = TypeAdapter(AccountEvent)
Batch = list[tuple[int, dict[str, Any] | None]]
IRRELEVANT = frozenset({"KeyViewed"})


@dataclass
class Fold:
    """A batch's net effect: per account, the key row to write or the key to drop."""

    keys: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # account -> deactivated key id
    people: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    revoked: set[tuple[str, str]] = field(default_factory=set)

    def apply(self, raw: dict[str, Any]) -> None:
        account = str(raw["stream_id"])
        payload = raw["payload"]
        if isinstance(payload, dict) and payload.get("kind") in IRRELEVANT:
            return  # the commonest event by far; nothing here depends on it
        match _events.validate_python(payload):
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
                self.keys[account] = _key_row(account, key_id, hint, raw)
                self.dropped.pop(account, None)
            case KeyDeactivated(key_id=key_id):
                pending = self.keys.get(account)
                if pending is not None and pending["key_id"] == key_id:
                    self.keys[account] = None  # generated and deactivated in this batch
                elif account not in self.keys:
                    self.dropped[account] = key_id


def _key_row(account: str, key_id: str, hint: str, raw: dict[str, Any]) -> dict[str, Any]:
    since = datetime.fromisoformat(str(raw["occurred_at"])).astimezone(UTC)
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


def fold(batch: Batch, last: int) -> tuple[Fold, int]:
    """Fold events after `last`; any that cannot be applied is reported once and skipped."""
    folded, applied = Fold(), 0
    for stream_seq, raw in batch:
        # None: not an event of its subject's account, reported once by the projector
        if stream_seq <= last or raw is None:
            continue
        try:
            folded.apply(raw)
            applied += 1
        except (ValidationError, ValueError, KeyError, TypeError, AttributeError) as exc:
            subject = event_subject(str(raw.get("stream_id")))
            skipped(KEYS_STREAM.name, stream_seq, subject, reason(exc), f"projection {PROJECTION}")
    return folded, applied


async def project(engine: AsyncEngine, batch: Batch) -> int:
    """Apply a batch and the tracking row in one transaction; returns events applied."""
    async with engine.begin() as conn:
        last = await tracking_row.last_seq(conn, tracking, PROJECTION)
        folded, applied = fold(batch, last)
        await _write(conn, folded)
        await tracking_row.advance(conn, tracking, PROJECTION, last, [seq for seq, _ in batch])
        return applied


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


def _replace(conn: AsyncConnection, table: Table, key: list[str]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE every other column from the new row."""
    stmt = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    others = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in key}
    return stmt.on_conflict_do_update(index_elements=key, set_=others)


async def position(engine: AsyncEngine) -> int:
    """The last stream sequence applied."""
    return await tracking_row.position(engine, tracking, PROJECTION)
