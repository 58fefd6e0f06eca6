"""Sidebar delivery: the inbox rows and their claims' new state, in one transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.common.sql import insert_ignore
from services.notifier.reminders import claims, messages
from services.notifier.reminders.claims import DELIVERED
from services.notifier.store import inbox

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime, timedelta

    from sqlalchemy.ext.asyncio import AsyncConnection

    from services.notifier.domain import Reminder
    from services.notifier.reminders.recorder import Writer


async def post_to_inbox(
    conn: AsyncConnection, token: str, items: Sequence[tuple[Reminder, str, str]], now: datetime
) -> int:
    """Sidebar delivery: the inbox rows and the claims' new state commit together."""
    done = await claims.finish(conn, token, [r.reminder_id for r, _, _ in items], DELIVERED, now)
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


async def post_all(
    writer: Writer, token: str, clock: Callable[[], datetime], lease: timedelta
) -> tuple[int, int]:
    """Every sidebar claim leased to `token`, 500 a transaction: (delivered, cancelled)."""
    delivered = cancelled = 0
    while True:
        now = clock()
        async with writer.begin() as conn:
            batch = await claims.lease(conn, token, "sidebar", now, now + lease, 500)
            if not batch:
                return delivered, cancelled
            posts = [
                (item.reminder, *messages.sidebar_text(item.reminder))
                for item in batch
                if item.key_active
            ]
            delivered += await post_to_inbox(conn, token, posts, now)
            cancelled += await claims.cancel_gone(conn, token, batch, now)
