"""notify.query.reminders: a key's age, the reminders recorded and the ones coming next."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.calendar import recommended_rotation
from contracts.notifier import (
    ActiveKeyInfo,
    RemindersQuery,
    RemindersResult,
    ReminderStatus,
    UpcomingReminder,
)
from services.common.sql import as_utc
from services.notifier import due
from services.notifier.domain import (
    channels_at,
    months_in_use,
    recipients,
    upcoming,
)
from services.notifier.store import keys, reminders

HISTORY_LIMIT = 500


def _maybe(moment: datetime | None) -> datetime | None:
    return as_utc(moment) if moment is not None else None


async def reminders_of(engine: AsyncEngine, q: RemindersQuery, now: datetime) -> RemindersResult:
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
            due_at=as_utc(r.due_at),
            state=r.state,
            attempts=r.attempts,
            delivered_at=_maybe(r.delivered_at),
            next_attempt_at=as_utc(r.next_attempt_at) if r.state == "claimed" else None,
            last_error=r.last_error,
        )
        for r in reversed(rows)  # the newest HISTORY_LIMIT, oldest first
    ]
    if key is None:
        return RemindersResult(account_id=q.account_id, as_of=as_of, reminders=history, upcoming=[])
    since = as_utc(key.in_use_since)
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
