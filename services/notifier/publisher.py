"""ReminderSent on NOTIFY: one hash-chained envelope per delivered reminder, appended once."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import GENESIS_HASH, canonical_json, chain_hash
from contracts.notifier import EVENT_VERSION, NOTIFY_STREAM, ReminderSent, event_subject
from services.common.sql import as_utc
from services.notifier.claims import DELIVERED, to_reminder
from services.notifier.domain import Reminder, recommended_rotation
from services.notifier.store import reminders

log = logging.getLogger("keyledger.notifier")
WRONG_LAST_SEQUENCE = 10071
ACTOR = "notifier"
MAX_HEADS = 10_000


@dataclass(frozen=True, slots=True)
class Head:
    """The last event on an account's subject: where the next one chains on."""

    stream_seq: int
    sequence: int
    hash: str


GENESIS = Head(0, 0, GENESIS_HASH)


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
    raw: dict[str, Any] = {
        "event_id": reminder.reminder_id,
        "type": payload.kind,
        "version": EVENT_VERSION,
        "stream_id": reminder.account_id,
        "sequence": head.sequence + 1,
        "occurred_at": delivered_at.isoformat(),
        "actor": ACTOR,
        "correlation_id": reminder.key_id,
        "causation_id": reminder.source_event_id,
        "prev_hash": head.hash,
        "payload": payload.model_dump(mode="json"),
    }
    raw["hash"] = chain_hash(raw)
    return raw


class Publisher:
    """Appends with the subject's expected last sequence, so chains never fork; a retry of an
    append that already happened is a duplicate by Nats-Msg-Id (the reminder id)."""

    def __init__(
        self, engine: AsyncEngine, clock: Callable[[], datetime], *, parallel: int = 32
    ) -> None:
        self._engine, self._clock = engine, clock
        self._js: JetStreamContext | None = None
        self._heads: dict[str, Head] = {}
        self._parallel = asyncio.Semaphore(parallel)

    def bind(self, js: JetStreamContext) -> None:
        self._js = js

    async def run(self, batch: int = 500) -> int:
        """Publish every delivered reminder not yet on NOTIFY; returns how many went out."""
        total = 0
        while self._js is not None:
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
                per_account[row.account_id].append((to_reminder(row), as_utc(row.delivered_at)))
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
        assert self._js is not None
        account, subject = reminder.account_id, event_subject(reminder.account_id)
        for _ in range(10):
            head = self._heads.get(account) or await self._load_head(subject)
            raw = envelope(reminder, delivered_at, head)
            headers = {
                "Nats-Msg-Id": reminder.reminder_id,
                "Nats-Expected-Last-Subject-Sequence": str(head.stream_seq),
            }
            try:
                ack = await self._js.publish(
                    subject, canonical_json(raw), stream=NOTIFY_STREAM.name, headers=headers
                )
            except BadRequestError as exc:
                if exc.err_code != WRONG_LAST_SEQUENCE:
                    raise
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
        assert self._js is not None
        try:
            msg = await self._js.get_last_msg(NOTIFY_STREAM.name, subject, direct=True)
        except NotFoundError:
            return GENESIS
        raw = json.loads(msg.data or b"{}")
        return Head(int(msg.seq or 0), int(raw["sequence"]), str(raw["hash"]))
