"""Claim rows in SQL: claim once, lease before delivering, record the outcome after."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, func, or_, select, tuple_, update

from services.notifier.domain import Channel, Reminder
from services.notifier.store import keys, reminders

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncConnection

CLAIMED, DELIVERED, FAILED, CANCELLED = "claimed", "delivered", "failed", "cancelled"
LEASE_TRIES = 5  # lost races before a lease gives up (it then finds nothing this sweep)


def new_token() -> str:
    """A lease owner: one per sweep and per sender (36 characters, as lease_owner holds)."""
    return str(uuid.uuid4())


async def count_waiting(conn: AsyncConnection) -> int:
    found = await conn.scalar(
        select(func.count()).select_from(reminders).where(reminders.c.state == CLAIMED)
    )
    return int(found or 0)


def _leasable() -> Any:
    """Deliverable and not leased by anyone else, at :now, for :token."""
    now = bindparam("now", type_=reminders.c.lease_until.type)
    return and_(
        reminders.c.state == CLAIMED,
        reminders.c.next_attempt_at <= now,
        or_(
            reminders.c.lease_owner == bindparam("token"),
            reminders.c.lease_until.is_(None),
            reminders.c.lease_until < now,
        ),
    )


# built once, with bound parameters: a statement made per call, with IN lists of literals,
# costs SQLAlchemy more CPU (coercing each element) than the database spends running it
_FREE = (
    select(reminders.c.reminder_id)
    .where(
        _leasable(),
        reminders.c.channel == bindparam("channel"),
        reminders.c.reminder_id.not_in(bindparam("held", expanding=True)),
    )
    .order_by(reminders.c.next_attempt_at)
    .limit(bindparam("limit"))
)
# re-checked in the UPDATE itself: a replica that leased a row meanwhile keeps it
_TAKE = (
    update(reminders)
    .where(reminders.c.reminder_id.in_(bindparam("ids", expanding=True)), _leasable())
    .values(
        lease_owner=bindparam("token"),
        lease_until=bindparam("until", type_=reminders.c.lease_until.type),
    )
)
_TAKEN = (
    select(reminders, keys.c.key_id.label("active_key_id"))
    .outerjoin(keys, keys.c.account_id == reminders.c.account_id)
    .where(
        reminders.c.reminder_id.in_(bindparam("ids", expanding=True)),
        reminders.c.lease_owner == bindparam("token"),
        reminders.c.state == CLAIMED,
    )
)


@dataclass(frozen=True, slots=True)
class Leased:
    reminder: Reminder
    key_active: bool  # False: the key was rotated or deactivated since the claim
    attempts: int  # failed attempts so far


async def lease(
    conn: AsyncConnection,
    token: str,
    channel: Channel,
    now: datetime,
    until: datetime,
    limit: int,
    *,
    held: Collection[str] = (),
) -> list[Leased]:
    """Take up to `limit` deliverable claims of one channel for this sweep's token, none of
    `held` (claims the token leases already and is still working on)."""
    params: dict[str, Any] = {"token": token, "now": now, "until": until, "channel": channel}
    params |= {"held": list(held), "limit": limit}
    for _ in range(LEASE_TRIES):
        params["ids"] = list(await conn.scalars(_FREE, params))
        if not params["ids"]:
            return []
        if (await conn.execute(_TAKE, params)).rowcount:
            break
        # on PostgreSQL another sender leased these between our SELECT and UPDATE (which
        # waited for its commit): the next SELECT sees that and finds the claims still free
    else:
        return []
    rows = await conn.execute(_TAKEN, params)
    return [Leased(to_reminder(r), r.active_key_id == r.key_id, r.attempts) for r in rows]


def to_reminder(r: Any) -> Reminder:
    return Reminder(
        reminder_id=r.reminder_id,
        account_id=r.account_id,
        key_id=r.key_id,
        key_hint=r.key_hint,
        in_use_since=r.in_use_since,
        source_event_id=r.source_event_id,
        milestone=r.milestone,
        channel=r.channel,
        recipient=r.recipient,
        email=r.email,
        due_at=r.due_at,
    )


def _mine(token: str, ids: Sequence[str]) -> Any:
    return and_(
        reminders.c.reminder_id.in_(ids),
        reminders.c.lease_owner == token,
        reminders.c.state == CLAIMED,
    )


async def renew(conn: AsyncConnection, token: str, ids: Sequence[str], until: datetime) -> int:
    result = await conn.execute(
        update(reminders).where(_mine(token, ids)).values(lease_until=until)
    )
    return result.rowcount


async def finish(
    conn: AsyncConnection, token: str, ids: Sequence[str], state: str, now: datetime
) -> int:
    """Record delivered / cancelled; returns how many of our leases it closed."""
    values: dict[str, Any] = {"state": state, "lease_owner": None, "lease_until": None}
    if state == DELIVERED:
        values |= {"delivered_at": now, "attempts": reminders.c.attempts + 1, "last_error": None}
    result = await conn.execute(update(reminders).where(_mine(token, ids)).values(**values))
    return result.rowcount


# built once: a statement made per call with its IN list of literals costs SQLAlchemy more
# CPU (coercing each element) than the database spends running it
_DELIVERED = (
    update(reminders)
    .where(
        tuple_(reminders.c.lease_owner, reminders.c.reminder_id).in_(
            bindparam("leases", expanding=True)
        ),
        reminders.c.state == CLAIMED,
    )
    .values(
        state=DELIVERED,
        lease_owner=None,
        lease_until=None,
        delivered_at=bindparam("at", type_=reminders.c.delivered_at.type),
        attempts=reminders.c.attempts + 1,
        last_error=None,
    )
)


async def delivered(conn: AsyncConnection, leases: Sequence[tuple[str, str]], now: datetime) -> int:
    """`finish(..., DELIVERED, ...)` for (lease owner, reminder id) pairs of several owners
    in one statement; returns how many of those leases it closed."""
    result = await conn.execute(_DELIVERED, {"leases": list(leases), "at": now})
    return result.rowcount


async def failed_attempt(
    conn: AsyncConnection,
    token: str,
    reminder_id: str,
    *,
    error: str,
    retry_at: datetime | None,
) -> None:
    """Count a failed attempt; retry_at None: the failure is final."""
    values: dict[str, Any] = {
        "attempts": reminders.c.attempts + 1,
        "last_error": error[:500],
        "lease_owner": None,
        "lease_until": None,
    }
    values |= {"state": FAILED} if retry_at is None else {"next_attempt_at": retry_at}
    await conn.execute(update(reminders).where(_mine(token, [reminder_id])).values(**values))


async def cancel_gone(conn: AsyncConnection, token: str, batch: list[Leased], now: datetime) -> int:
    """Cancel the leased claims whose key was rotated or deactivated since: pointless now."""
    gone = [item.reminder.reminder_id for item in batch if not item.key_active]
    if not gone:
        return 0
    return await finish(conn, token, gone, CANCELLED, now)


async def release(conn: AsyncConnection, token: str) -> None:
    """Give back leases not worked on, for the next sweep (here or elsewhere)."""
    await conn.execute(
        update(reminders)
        .where(reminders.c.lease_owner == token, reminders.c.state == CLAIMED)
        .values(lease_owner=None, lease_until=None)
    )
