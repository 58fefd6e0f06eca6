"""The reminder sweep: plan due milestones into claims, deliver them, publish ReminderSent."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError

from contracts.notifier import SweepResult
from services.notifier.domain import (
    ActiveKey,
    Reminder,
    due_at,
    latest_due,
    next_milestone,
    plan,
    step,
)
from services.notifier.reminders import claims, due
from services.notifier.reminders.claims import new_token

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime, timedelta

    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.notifier.reminders.delivery import Deliverer
    from services.notifier.reminders.publisher import Publisher

log = logging.getLogger("keyledger.notifier")
RETRIES = 3


class Sweeper:
    """One sweep at a time per process; replicas may sweep together (claims and leases)."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        deliverer: Deliverer,
        publisher: Publisher,
        clock: Callable[[], datetime],
        batch: int,
        lease: timedelta,
        new_id: Callable[[], str] = new_token,
    ) -> None:
        self._engine, self._deliverer, self._publisher = engine, deliverer, publisher
        self._clock, self._batch, self._lease, self._new_id = clock, batch, lease, new_id
        self._lock = asyncio.Lock()

    async def sweep(self, as_of: datetime | None = None) -> SweepResult:
        async with self._lock:
            as_of = as_of or self._clock()
            token = self._new_id()
            due_keys, claimed = await self.plan(as_of, token)
            outcome = await self._deliverer.run(token)
            published = await self._publisher.run()
            async with self._engine.connect() as conn:
                waiting = await claims.count_waiting(conn)
        return SweepResult(
            as_of=as_of,
            due_keys=due_keys,
            claimed=claimed,
            delivered=outcome.delivered,
            retrying=outcome.retrying,
            failed=outcome.failed,
            cancelled=outcome.cancelled,
            published=published,
            waiting=waiting,
        )

    async def scheduled(self) -> None:
        """The APScheduler job: a sweep as of now; a failure is logged and the next one runs."""
        try:
            result = await self.sweep()
        except Exception:
            log.exception("notifier: scheduled sweep failed; the next one will retry")
            return
        if result.claimed or result.delivered or result.retrying or result.failed:
            log.info("notifier: sweep %s", result.model_dump_json(exclude={"as_of"}))

    async def plan(self, as_of: datetime, token: str) -> tuple[int, int]:
        """Claim the reminders of every key due at `as_of`, a batch of keys per transaction;
        returns (due keys, claims this sweep created)."""
        total_keys = total_claimed = 0
        while True:
            for attempt in range(RETRIES):
                try:
                    found, claimed = await self._plan_batch(as_of, token)
                    break
                except DBAPIError as exc:
                    # claims are idempotent: a batch that lost a lock race is simply redone
                    if attempt == RETRIES - 1 or not _lost_race(exc):
                        raise
                    log.info("notifier: planning batch retried after %s", type(exc.orig))
            if not found:
                return total_keys, total_claimed
            total_keys, total_claimed = total_keys + found, total_claimed + claimed

    async def _plan_batch(self, as_of: datetime, token: str) -> tuple[int, int]:
        now = self._clock()
        async with self._engine.begin() as conn:
            found = await due.due_keys(conn, as_of, self._batch)
            if not found:
                return 0, 0
            folks = await due.people_of(conn, [key.account_id for key, _ in found])
            planned: list[Reminder] = []
            moves = []
            for key, next_months in found:
                reminders, move = _plan_key(key, next_months, as_of, folks.get(key.account_id))
                planned += reminders
                moves.append(move)
            await due.claim(conn, planned, token, now, now + self._lease)
            await due.advance(conn, moves)
            claimed = await due.count_mine(conn, token, [r.reminder_id for r in planned])
        return len(found), claimed


def _lost_race(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(s in text for s in ("deadlock", "could not serialize", "database is locked"))


def _plan_key(
    key: ActiveKey, next_months: int, as_of: datetime, people: Any
) -> tuple[list[Reminder], dict[str, Any]]:
    """The key's reminders at `as_of` and where its schedule moves next."""
    move = {"a": key.account_id, "k": key.key_id, "old": next_months}
    found = step(key.in_use_since, next_months, as_of)
    if found is None:
        # a stale row (next_due_at out of step): recompute it so the key leaves the due set
        following = next_milestone(latest_due(key.in_use_since, as_of) or 0)
        return [], move | {"new": following, "due": due_at(key.in_use_since, following)}
    move |= {"new": found.next_months, "due": found.next_due_at}
    return plan(key, found.milestone, people or []), move
