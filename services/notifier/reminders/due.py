"""The sweep's SQL side of planning: due keys, their people, new claims, advanced keys."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, update

from services.common.sql import insert_ignore
from services.notifier.domain import ActiveKey, Person, Reminder
from services.notifier.reminders.claims import CLAIMED
from services.notifier.store import keys, people, reminders

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncConnection

IN_CHUNK = 5000  # well below the bound-parameter limits of SQLite and asyncpg


async def due_keys(
    conn: AsyncConnection, as_of: datetime, limit: int
) -> list[tuple[ActiveKey, int]]:
    """Keys whose next milestone is due: a range scan of the next_due_at index."""
    rows = await conn.execute(
        select(keys)
        .where(keys.c.next_due_at <= as_of)
        .order_by(keys.c.next_due_at, keys.c.account_id)
        .limit(limit)
    )
    return [
        (
            ActiveKey(
                account_id=r.account_id,
                key_id=r.key_id,
                hint=r.hint,
                in_use_since=r.in_use_since,
                last_creator=r.last_creator,
                source_event_id=r.source_event_id,
            ),
            r.next_months,
        )
        for r in rows
    ]


async def people_of(conn: AsyncConnection, accounts: Sequence[str]) -> dict[str, list[Person]]:
    found: dict[str, list[Person]] = defaultdict(list)
    if accounts:
        rows = await conn.execute(select(people).where(people.c.account_id.in_(set(accounts))))
        for r in rows:
            found[r.account_id].append(Person(r.user, r.email, bool(r.admin)))
    return found


async def claim(
    conn: AsyncConnection, planned: Sequence[Reminder], token: str, now: datetime, until: datetime
) -> None:
    """Insert the claims; a clash keeps the existing row (claimed before, by anyone).

    Fresh claims are leased to this sweep's token at once, so `count_mine` tells which
    of them this sweep created.
    """
    if planned:
        # one global lock order on PostgreSQL: two sweeps claiming overlapping sets queue
        # behind each other instead of deadlocking
        rows = [_claim_row(r, token, now, until) for r in sorted(planned, key=_by_id)]
        await conn.execute(insert_ignore(conn, reminders, ["reminder_id"]), rows)


async def count_mine(conn: AsyncConnection, token: str, ids: Sequence[str]) -> int:
    """How many of these claims carry this sweep's token: the ones it just created."""
    total = 0
    for start in range(0, len(ids), IN_CHUNK):
        found = await conn.scalar(
            select(func.count())
            .select_from(reminders)
            .where(
                reminders.c.reminder_id.in_(ids[start : start + IN_CHUNK]),
                reminders.c.lease_owner == token,
            )
        )
        total += int(found or 0)
    return total


async def advance(conn: AsyncConnection, moves: list[dict[str, Any]]) -> None:
    """Move keys to their next milestone, unless another sweep or a rotation moved them first."""
    if moves:
        moves = sorted(moves, key=lambda move: str(move["a"]))
        await conn.execute(
            update(keys)
            .where(
                keys.c.account_id == bindparam("a"),
                keys.c.key_id == bindparam("k"),
                keys.c.next_months == bindparam("old"),
            )
            .values(next_months=bindparam("new"), next_due_at=bindparam("due")),
            moves,
        )


def _by_id(reminder: Reminder) -> str:
    return reminder.reminder_id


def _claim_row(r: Reminder, token: str, now: datetime, until: datetime) -> dict[str, Any]:
    return {
        "reminder_id": r.reminder_id,
        "account_id": r.account_id,
        "key_id": r.key_id,
        "key_hint": r.key_hint,
        "in_use_since": r.in_use_since,
        "source_event_id": r.source_event_id,
        "milestone": r.milestone,
        "channel": r.channel,
        "recipient": r.recipient,
        "email": r.email,
        "due_at": r.due_at,
        "state": CLAIMED,
        "attempts": 0,
        "next_attempt_at": now,
        "lease_owner": token,
        "lease_until": until,
        "claimed_at": now,
    }
