"""Delivering leased claims: sidebar rows, then emails by senders over kept SMTP sessions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.notifier.reminders import claims, messages
from services.notifier.reminders.claims import Leased, new_token
from services.notifier.reminders.errors import DeliveryError
from services.notifier.reminders.inbox import post_all
from services.notifier.reminders.link import Link
from services.notifier.reminders.recorder import Recorder, Writer

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime, timedelta

    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.notifier.domain import RetryPolicy
    from services.notifier.reminders.mailer import Transport

log = logging.getLogger("keyledger.notifier")


@dataclass
class Outcome:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0


@dataclass
class Deliverer:
    engine: AsyncEngine
    transport: Transport
    sender: str
    policy: RetryPolicy
    lease: timedelta
    send_timeout: timedelta  # the longest one email may take, connecting included
    chunk: int
    clock: Callable[[], datetime]
    senders: int = 1  # SMTP sessions at once; an mbox file takes one writer
    new_id: Callable[[], str] = new_token  # each sender's lease owner
    _writer: Writer = field(init=False, repr=False)
    _recorder: Recorder = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._writer = Writer(self.engine)
        self._recorder = Recorder(self._writer, self.clock)

    async def run(self, token: str) -> Outcome:
        outcome = Outcome()
        tokens = [token] + [self.new_id() for _ in range(self.senders)]
        self._writer = Writer(self.engine)  # its lock belongs to this run's event loop
        self._recorder = recorder = Recorder(self._writer, self.clock)
        try:
            done, gone = await post_all(self._writer, token, self.clock, self.lease)
            outcome.delivered, outcome.cancelled = done, gone
            # the sweep's fresh email claims go back to the pool; each sender leases its
            # share under a token of its own, so no two senders ever hold the same claim
            async with self._writer.begin() as conn:
                await claims.release(conn, token)
            unreachable = asyncio.Event()
            # every sender ends before the leases are released, even when one of them failed
            ended = await asyncio.gather(
                *(self._emails(t, outcome, unreachable) for t in tokens[1:]),
                return_exceptions=True,
            )
            for result in ended:
                if isinstance(result, BaseException):
                    raise result
        finally:
            try:  # recorded before the leases go: a released claim could not be finished
                await recorder.flush()
            finally:
                outcome.delivered += recorder.delivered
                async with self._writer.begin() as conn:
                    for owner in tokens:
                        await claims.release(conn, owner)
        return outcome

    async def _emails(self, token: str, outcome: Outcome, unreachable: asyncio.Event) -> None:
        """One sender: lease a chunk, send it over the sender's session, until none is left.
        The next chunk is leased while the last mail of this one is sent: the sender does
        not wait on the database between chunks, and a chunk is never leased more than one
        send before its first mail goes (a lease must outlast a send, not a whole chunk)."""
        link = Link(self.transport)
        ahead: asyncio.Task[tuple[list[Leased], datetime]] | None = None
        try:
            batch, until = await self._lease_chunk(token, outcome, set())
            while batch and not unreachable.is_set():
                held = {item.reminder.reminder_id for item in batch}

                def lease_next(held: set[str] = held) -> None:
                    nonlocal ahead
                    # what this sender still holds: this chunk, and mails not yet recorded
                    held.update(self._recorder.unrecorded(token))
                    ahead = asyncio.create_task(self._lease_chunk(token, outcome, held))

                live = [item for item in batch if item.key_active]
                if not await self._send_all(token, live, until, outcome, link, lease_next):
                    unreachable.set()  # the others stop too; the rest waits for the next sweep
                    break
                if not self.transport.keep_open:
                    await link.close()
                if ahead is None:  # nothing was sent (all cancelled)
                    lease_next()
                assert ahead is not None
                task, ahead = ahead, None
                batch, until = await task
        finally:
            if ahead is not None:  # its leases are released with the others by run()
                with contextlib.suppress(Exception):
                    await ahead
            await link.close()

    async def _lease_chunk(
        self, token: str, outcome: Outcome, held: set[str]
    ) -> tuple[list[Leased], datetime]:
        now = self.clock()
        until = now + self.lease
        async with self._writer.begin() as conn:
            batch = await claims.lease(conn, token, "email", now, until, self.chunk, held=held)
            outcome.cancelled += await claims.cancel_gone(conn, token, batch, now)
        return batch, until

    async def _send_all(
        self,
        token: str,
        batch: list[Leased],
        leased_until: datetime,
        outcome: Outcome,
        link: Link,
        before_last: Callable[[], None],
    ) -> bool:
        """False when the mail server is unreachable: the rest waits for the next sweep."""
        for index, item in enumerate(batch):
            if leased_until - self.clock() < 2 * self.send_timeout:
                leased_until = await self._renew(token, batch[index:])
            if index == len(batch) - 1:
                before_last()
            if not link.is_open:
                try:
                    await link.connect()
                except DeliveryError as err:  # could not connect: the rest of the chunk waits
                    rest = batch[index:]
                    log.warning("notifier: %s; %d emails will be retried", err.reason, len(rest))
                    for waiting in rest:
                        await self._failed(token, waiting, err, outcome)
                    return False
            if not await self._send_one(token, item, link, outcome):
                return False
        return True

    async def _send_one(self, token: str, item: Leased, link: Link, outcome: Outcome) -> bool:
        """False when the server broke a session that had not yet taken a mail."""
        reminder = item.reminder
        try:
            mail = messages.email(reminder, sender=self.sender, now=self.clock())
        except ValueError as exc:  # no address, or one that cannot go into a header
            await self._failed(token, item, DeliveryError(str(exc), permanent=True), outcome)
            return True
        fresh = link.fresh
        try:
            await link.send(mail)
        except DeliveryError as err:
            await self._failed(token, item, err, outcome)
            # a session dropped after it took mail is reopened for the next one; one that
            # breaks before taking any means the server is in trouble: stop, as on connect
            return not (err.broken and fresh)
        self._recorder.add(token, reminder.reminder_id)
        return True

    async def _renew(self, token: str, rest: list[Leased]) -> datetime:
        until = self.clock() + self.lease
        ids = [item.reminder.reminder_id for item in rest] + self._recorder.unrecorded(token)
        async with self._writer.begin() as conn:
            await claims.renew(conn, token, ids, until)
        return until

    async def _failed(self, token: str, item: Leased, err: DeliveryError, outcome: Outcome) -> None:
        attempts = item.attempts + 1
        final = self.policy.gives_up(attempts, permanent=err.permanent)
        retry_at = None if final else self.clock() + self.policy.delay(attempts)
        async with self._writer.begin() as conn:
            await claims.failed_attempt(
                conn, token, item.reminder.reminder_id, error=err.reason, retry_at=retry_at
            )
        if final:
            outcome.failed += 1
            log.error(
                "notifier: reminder %s to %s failed for good after %d attempts: %s",
                item.reminder.reminder_id,
                item.reminder.recipient,
                attempts,
                err.reason,
            )
        else:
            outcome.retrying += 1
