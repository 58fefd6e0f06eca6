"""The notifier's read requests: the sidebar inbox, an account's reminders, and health."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import RootModel
from sqlalchemy import select

from contracts.calendar import recommended_rotation
from contracts.notifier import (
    ActiveKeyInfo,
    RemindersQuery,
    RemindersResult,
    ReminderStatus,
    SidebarItem,
    SidebarPage,
    SidebarQuery,
    UpcomingReminder,
)
from services.notifier import projection
from services.notifier.domain import channels_at, months_in_use, recipients, upcoming
from services.notifier.reminders import due
from services.notifier.store import inbox, keys, reminders

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.common.serve import Headers

HISTORY_LIMIT = 500


async def reminders_of(engine: AsyncEngine, q: RemindersQuery, now: datetime) -> RemindersResult:
    """A key's age, the reminders recorded (the newest HISTORY_LIMIT) and the next three."""
    as_of = q.as_of or now
    async with engine.connect() as conn:
        key = (await conn.execute(select(keys).where(keys.c.account_id == q.account_id))).first()
        rows = (
            await conn.execute(
                select(reminders)
                .where(reminders.c.account_id == q.account_id)
                .order_by(
                    reminders.c.due_at.desc(),
                    reminders.c.channel.desc(),
                    reminders.c.recipient.desc(),
                )
                .limit(HISTORY_LIMIT)
            )
        ).all()
        folks = (await due.people_of(conn, [q.account_id])).get(q.account_id, [])
    history = [
        ReminderStatus(
            id=r.reminder_id,
            key_id=r.key_id,
            milestone_months=r.milestone,
            channel=r.channel,
            recipient=r.recipient,
            email=r.email,
            due_at=r.due_at,
            state=r.state,
            attempts=r.attempts,
            delivered_at=r.delivered_at,
            next_attempt_at=r.next_attempt_at if r.state == "claimed" else None,
            last_error=r.last_error,
        )
        for r in reversed(rows)  # the newest HISTORY_LIMIT, oldest first
    ]
    if key is None:
        return RemindersResult(account_id=q.account_id, as_of=as_of, reminders=history, upcoming=[])
    since = key.in_use_since
    names = [p.user for p in recipients(folks, key.last_creator)]
    info = ActiveKeyInfo(
        key_id=key.key_id,
        hint=key.hint,
        in_use_since=since,
        last_creator=key.last_creator,
        age_days=max((as_of - since).days, 0),
        age_months=months_in_use(since, as_of),
        recommended_rotation_at=recommended_rotation(since),
    )
    coming = [
        UpcomingReminder(
            milestone_months=months,
            due_at=when,
            channels=list(channels_at(months)),
            recipients=names,
        )
        for months, when in upcoming(since, key.next_months, as_of)
    ]
    return RemindersResult(
        account_id=q.account_id, as_of=as_of, key=info, reminders=history, upcoming=coming
    )


async def sidebar(engine: AsyncEngine, q: SidebarQuery) -> SidebarPage:
    """The user's inbox, newest first; a user nobody notified simply has none."""
    stmt = select(inbox).where(inbox.c.user == q.user)
    if q.account_id is not None:
        stmt = stmt.where(inbox.c.account_id == q.account_id)
    if q.unread_only:
        stmt = stmt.where(inbox.c.read_at.is_(None))
    stmt = stmt.order_by(inbox.c.created_at.desc(), inbox.c.id).limit(q.limit)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    items = [
        SidebarItem(
            id=r.id,
            account_id=r.account_id,
            key_id=r.key_id,
            key_hint=r.key_hint,
            milestone_months=r.milestone,
            title=r.title,
            message=r.message,
            created_at=r.created_at,
            read_at=r.read_at if r.read_at else None,
        )
        for r in rows
    ]
    return SidebarPage(user=q.user, items=items)


class HealthQuery(RootModel[Any]):
    """Health takes any JSON value and ignores it."""


async def health(
    engine: AsyncEngine, *, following: bool, mail: str, time_travel: bool
) -> dict[str, Any]:
    return {
        "service": "notifier",
        "pid": os.getpid(),  # tells replicas apart (one queue group answers)
        "stream_seq": await projection.position(engine),
        "following_keys": following,
        "mail": mail,
        "time_travel": time_travel,
    }


@dataclass(frozen=True, slots=True)
class Queries:
    """The query handlers as serve() calls them, with what they need bound."""

    engine: AsyncEngine
    clock: Callable[[], datetime]
    settle: Callable[[], Awaitable[None]]  # until the projection holds what KEYS holds now
    following: Callable[[], bool]  # whether the KEYS projector is bound yet
    mail: str  # where mail goes, as the transport describes it
    time_travel: bool

    async def sidebar(self, query: SidebarQuery, _headers: Headers) -> SidebarPage:
        return await sidebar(self.engine, query)

    async def reminders(self, query: RemindersQuery, _headers: Headers) -> RemindersResult:
        await self.settle()
        return await reminders_of(self.engine, query, self.clock())

    async def health(self, _query: HealthQuery, _headers: Headers) -> dict[str, Any]:
        return await health(
            self.engine, following=self.following(), mail=self.mail, time_travel=self.time_travel
        )
