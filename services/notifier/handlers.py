"""The notifier's commands: mark sidebar items read, and sweep (with its time-travel guard)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from contracts.notifier import TIME_TRAVEL_DISABLED, MarkRead, MarkReadResult, Sweep, SweepResult
from services.common.errors import Refused
from services.notifier.store import inbox

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.common.serve import Headers
    from services.notifier.reminders.sweep import Sweeper

CLOCK_SKEW = timedelta(minutes=1)  # an as_of this close to now is not time travel


def refuse_time_travel(as_of: datetime | None, now: datetime, *, allowed: bool) -> None:
    """A sweep as of the future sends reminders early: only where time travel is on (dev)."""
    if as_of is not None and as_of > now + CLOCK_SKEW and not allowed:
        raise Refused(
            TIME_TRAVEL_DISABLED,
            "as_of is in the future; run the notifier with "
            "KEYLEDGER_ALLOW_TIME_TRAVEL=1 (keyledger up --dev) to allow it",
        )


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


@dataclass(frozen=True, slots=True)
class Commands:
    """The command handlers as serve() calls them, with what they need bound."""

    engine: AsyncEngine
    sweeper: Sweeper
    clock: Callable[[], datetime]
    settle: Callable[[], Awaitable[None]]  # until the projection holds what KEYS holds now
    allow_time_travel: bool

    async def mark_read(self, command: MarkRead, _headers: Headers) -> MarkReadResult:
        return await mark_read(self.engine, command, self.clock())

    async def sweep(self, command: Sweep, _headers: Headers) -> SweepResult:
        refuse_time_travel(command.as_of, self.clock(), allowed=self.allow_time_travel)
        await self.settle()
        return await self.sweeper.sweep(command.as_of)
