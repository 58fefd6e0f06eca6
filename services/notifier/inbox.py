"""The sidebar inbox: delivery into it, the per-user query and marking read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.notifier import MarkRead, MarkReadResult, SidebarItem, SidebarPage, SidebarQuery
from services.common.sql import as_utc, insert_ignore
from services.notifier.claims import DELIVERED, finish
from services.notifier.domain import Reminder
from services.notifier.store import inbox


async def post_to_inbox(
    conn: AsyncConnection, token: str, items: Sequence[tuple[Reminder, str, str]], now: datetime
) -> int:
    """Sidebar delivery: the inbox rows and the claims' new state commit together."""
    done = await finish(conn, token, [r.reminder_id for r, _, _ in items], DELIVERED, now)
    rows = [
        {
            "id": r.reminder_id,
            "user": r.recipient,
            "account_id": r.account_id,
            "key_id": r.key_id,
            "key_hint": r.key_hint,
            "milestone": r.milestone,
            "title": title,
            "message": message,
            "created_at": now,
        }
        for r, title, message in items
    ]
    if rows:
        await conn.execute(insert_ignore(conn, inbox, ["id"]), rows)
    return done


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
            created_at=as_utc(r.created_at),
            read_at=as_utc(r.read_at) if r.read_at else None,
        )
        for r in rows
    ]
    return SidebarPage(user=q.user, items=items)


async def mark_read(engine: AsyncEngine, command: MarkRead, now: datetime) -> MarkReadResult:
    """Idempotent: an id read before stays read (with its first read time)."""
    ids = sorted(set(command.ids))
    mine = (inbox.c.user == command.user) & inbox.c.id.in_(ids)
    async with engine.begin() as conn:
        await conn.execute(update(inbox).where(mine, inbox.c.read_at.is_(None)).values(read_at=now))
        found = set(await conn.scalars(select(inbox.c.id).where(mine)))
    return MarkReadResult(
        user=command.user,
        marked=[i for i in ids if i in found],
        unknown=[i for i in ids if i not in found],
    )
