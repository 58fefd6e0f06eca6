"""ReminderSent on NOTIFY: one hash-chained envelope per delivered reminder, appended once."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select, update

from contracts.calendar import recommended_rotation
from contracts.envelope import GENESIS_HASH, canonical_json, seal
from contracts.notifier import EVENT_VERSION, NOTIFY_STREAM, ReminderSent, event_subject
from contracts.stored import chain_problem
from services.common import eventlog
from services.common.eventlog import Conflict, EventLog, Stored
from services.notifier.reminders.claims import DELIVERED, to_reminder
from services.notifier.store import reminders

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from datetime import datetime

    from nats.js import JetStreamContext, api
    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.notifier.domain import Reminder

log = logging.getLogger("keyledger.notifier")
READER = "the notifier's publisher"
ACTOR = "notifier"
MAX_HEADS = 10_000


@dataclass(frozen=True, slots=True)
class Head:
    """Where an account's next event goes: after the subject's last message (whatever it
    holds), chained onto the account's last event."""

    stream_seq: int
    sequence: int
    hash: str


GENESIS = Head(0, 0, GENESIS_HASH)


class Log(Protocol):
    """What the publisher needs of NOTIFY: services.common.eventlog.EventLog, or a stand-in."""

    def bind(self, js: JetStreamContext) -> None: ...

    async def append(
        self, subject: str, data: bytes, *, expected_subject_seq: int, msg_id: str
    ) -> api.PubAck: ...

    async def last(self, subject: str) -> Stored | None: ...

    def read_subject(self, subject: str, after_seq: int) -> AsyncIterator[Stored]: ...


def envelope(reminder: Reminder, delivered_at: datetime, head: Head) -> dict[str, Any]:
    """The same envelope and hash chain the keys service writes, so `replay --verify` works."""
    payload = ReminderSent(
        reminder_id=reminder.reminder_id,
        key_id=reminder.key_id,
        key_hint=reminder.key_hint,
        in_use_since=reminder.in_use_since,
        milestone_months=reminder.milestone,
        channel=reminder.channel,
        recipient=reminder.recipient,
        email=reminder.email if reminder.channel == "email" else None,
        due_at=reminder.due_at,
        recommended_rotation_at=recommended_rotation(reminder.in_use_since),
        delivered_at=delivered_at,
    )
    return seal(
        # one event id form on every stream: 32 lowercase hex digits, as KEYS writes
        event_id=reminder.reminder_id.replace("-", ""),
        type=payload.kind,
        version=EVENT_VERSION,
        stream_id=reminder.account_id,
        sequence=head.sequence + 1,
        occurred_at=delivered_at,
        actor=ACTOR,
        correlation_id=reminder.key_id,
        causation_id=reminder.source_event_id,
        prev_hash=head.hash,
        payload=payload.model_dump(mode="json"),
    )


class Publisher:
    """Appends with the subject's expected last sequence, so chains never fork; a retry of an
    append that already happened is a duplicate by Nats-Msg-Id (the reminder id)."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Callable[[], datetime],
        *,
        parallel: int = 32,
        log: Log | None = None,
    ) -> None:
        """`log`: where events go; None: NOTIFY, usable once `bind` gives it a connection."""
        self._engine, self._clock = engine, clock
        self._log: Log = log or EventLog(NOTIFY_STREAM)
        self._bound = log is not None
        self._heads: dict[str, Head] = {}
        self._parallel = asyncio.Semaphore(parallel)

    def bind(self, js: JetStreamContext) -> None:
        self._log.bind(js)
        self._bound = True

    async def run(self, batch: int = 500) -> int:
        """Publish every delivered reminder not yet on NOTIFY; returns how many went out."""
        total = 0
        while self._bound:
            async with self._engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(reminders)
                        .where(reminders.c.state == DELIVERED, reminders.c.published_at.is_(None))
                        .order_by(reminders.c.delivered_at)
                        .limit(batch)
                    )
                ).all()
            if not rows:
                break
            per_account: dict[str, list[tuple[Reminder, datetime]]] = defaultdict(list)
            for row in rows:
                per_account[row.account_id].append((to_reminder(row), row.delivered_at))
            results = await asyncio.gather(
                *(self._account(items) for items in per_account.values()), return_exceptions=True
            )
            done = [rid for r in results if isinstance(r, list) for rid in r]
            if done:
                async with self._engine.begin() as conn:
                    await conn.execute(
                        update(reminders)
                        .where(reminders.c.reminder_id.in_(done))
                        .values(published_at=self._clock())
                    )
            total += len(done)
            if failures := [r for r in results if isinstance(r, BaseException)]:
                log.error(
                    "notifier: ReminderSent not published, retried next sweep: %r", failures[0]
                )
                break
        return total

    async def _account(self, items: list[tuple[Reminder, datetime]]) -> list[str]:
        async with self._parallel:
            done = []
            for reminder, delivered_at in items:
                await self._append(reminder, delivered_at)
                done.append(reminder.reminder_id)
            return done

    async def _append(self, reminder: Reminder, delivered_at: datetime) -> None:
        account, subject = reminder.account_id, event_subject(reminder.account_id)
        for _ in range(10):
            head = self._heads.get(account) or await self._load_head(subject)
            raw = envelope(reminder, delivered_at, head)
            try:
                ack = await self._log.append(
                    subject,
                    canonical_json(raw),
                    expected_subject_seq=head.stream_seq,
                    msg_id=reminder.reminder_id,
                )
            except Conflict:
                self._heads.pop(account, None)  # another replica appended: chain onto theirs
                continue
            if len(self._heads) >= MAX_HEADS:
                self._heads.clear()
            if ack.duplicate:
                self._heads.pop(account, None)
            else:
                self._heads[account] = Head(ack.seq, raw["sequence"], raw["hash"])
            return
        raise RuntimeError(f"{subject} kept changing while appending {reminder.reminder_id}")

    async def _load_head(self, subject: str) -> Head:
        last = await self._log.last(subject)
        if last is None:
            return GENESIS
        raw = eventlog.envelope(NOTIFY_STREAM.name, last, READER)
        if raw is not None:
            return Head(last.stream_seq, raw["sequence"], raw["hash"])
        return await self._scan(subject)

    async def _scan(self, subject: str) -> Head:
        """The whole subject read to find its last event: only after a foreign message."""
        head = GENESIS
        async for stored in self._log.read_subject(subject, 0):
            raw = eventlog.envelope(NOTIFY_STREAM.name, stored, READER)
            if raw is None:
                head = Head(stored.stream_seq, head.sequence, head.hash)
            elif (why := chain_problem(raw, head.sequence, head.hash)) is None:
                head = Head(stored.stream_seq, raw["sequence"], raw["hash"])
            else:
                eventlog.skipped(NOTIFY_STREAM.name, stored.stream_seq, subject, why, READER)
                head = Head(stored.stream_seq, head.sequence, head.hash)
        return head
