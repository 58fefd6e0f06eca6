"""Email delivery over kept SMTP sessions: one per sender across chunks, reopened after a
drop, each reminder recorded once, on SQLite and PostgreSQL with a real SMTP server."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import insert, select

from services.notifier.domain import ActiveKey, Person, RetryPolicy, due_at, plan
from services.notifier.reminders import claims, due
from services.notifier.reminders.delivery import Deliverer
from services.notifier.reminders.mailer import SmtpTransport
from services.notifier.store import create_schema, keys, notifier_engine, reminders

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.drivers.smtp import SmtpSink

T0 = datetime(2025, 1, 31, 9, 0, tzinfo=UTC)
SWEEP = "sweep-token"


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = notifier_engine(db_url)
    await create_schema(engine)
    yield engine
    await engine.dispose()


async def claim(engine: AsyncEngine, count: int) -> list[str]:
    """`count` five-month email reminders of one key, claimed by the sweep's token."""
    key = ActiveKey("acme", "key_1", "klk_…x7q2", T0, "user000", "evt-1")
    people = [Person(f"user{i:03d}", f"user{i:03d}@x.io", admin=True) for i in range(count)]
    planned = plan(key, 5, people)
    now = due_at(T0, 5)
    async with engine.begin() as conn:
        row = {"account_id": "acme", "key_id": "key_1", "hint": "klk_…x7q2", "in_use_since": T0}
        row |= {"last_creator": "user000", "source_event_id": "evt-1", "next_months": 6}
        await conn.execute(insert(keys).values(**row, next_due_at=due_at(T0, 6)))
        await due.claim(conn, planned, SWEEP, now, now + timedelta(minutes=5))
    return sorted(r.reminder_id for r in planned)


class Clock:
    def __init__(self) -> None:
        self.now = due_at(T0, 5)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)  # time moves on between calls
        return self.now


def deliverer(engine: AsyncEngine, sink: SmtpSink, clock: Clock, *, senders: int) -> Deliverer:
    transport = SmtpTransport(
        host="127.0.0.1", port=sink.port, starttls=False, tls=False,
        user=None, password=None, timeout=5,
    )  # fmt: skip
    return Deliverer(
        engine=engine, transport=transport, sender="keyledger <kl@x.io>",
        policy=RetryPolicy(base=60), lease=timedelta(minutes=5),
        send_timeout=timedelta(seconds=5), chunk=3, clock=clock, senders=senders,
    )  # fmt: skip


async def claim_states(engine: AsyncEngine) -> dict[tuple[str, int], int]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(reminders.c.state, reminders.c.attempts))).all()
    return {k: len(list(g)) for k, g in itertools.groupby(sorted(map(tuple, rows)))}


def message_ids(sink: SmtpSink) -> list[str]:
    return sorted(str(m["X-Keyledger-Reminder"]) for m in sink.messages)


async def test_each_sender_keeps_one_session_across_its_chunks(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    ids = await claim(engine, 31)
    outcome = await deliverer(engine, smtp_sink, Clock(), senders=3).run(SWEEP)
    assert (outcome.delivered, outcome.retrying, outcome.failed) == (31, 0, 0)
    assert message_ids(smtp_sink) == ids  # each once, though chunks are leased ahead
    assert 1 <= len(smtp_sink.peers) <= 3  # 11 chunks, at most one connection per sender
    assert await claim_states(engine) == {("delivered", 1): 31}


async def test_a_lease_never_takes_back_what_its_sender_still_holds(engine: AsyncEngine) -> None:
    ids = await claim(engine, 6)
    now, until = due_at(T0, 5), due_at(T0, 5) + timedelta(minutes=5)
    async with engine.begin() as conn:
        await claims.release(conn, SWEEP)
        first = await claims.lease(conn, "sender", "email", now, until, 4)
        held = {item.reminder.reminder_id for item in first}
        ahead = await claims.lease(conn, "sender", "email", now, until, 4, held=held)
        again = await claims.lease(conn, "sender", "email", now, until, 4)
    assert {item.reminder.reminder_id for item in ahead} == set(ids) - held
    assert len(held) == 4
    assert len(again) == 4  # without `held`, a lease owner takes its own claims again


async def test_a_connection_dropped_mid_batch_is_reopened_and_the_rest_delivered(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    ids = await claim(engine, 10)
    smtp_sink.hang_up_at = {5}  # the fifth MAIL: four delivered, then the line goes dead
    clock = Clock()
    first = await deliverer(engine, smtp_sink, clock, senders=1).run(SWEEP)
    assert (first.delivered, first.retrying, first.failed) == (9, 1, 0)
    assert len(smtp_sink.peers) == 2  # the dropped session and the one reopened after it
    assert await claim_states(engine) == {("delivered", 1): 9, ("claimed", 1): 1}

    clock.now += timedelta(minutes=2)  # past the retry delay: the next sweep sends it
    second = await deliverer(engine, smtp_sink, clock, senders=1).run("next-sweep")
    assert (second.delivered, second.retrying) == (1, 0)
    assert message_ids(smtp_sink) == ids  # nothing twice, nothing lost
    assert await claim_states(engine) == {("delivered", 1): 9, ("delivered", 2): 1}


async def test_a_server_that_drops_every_new_session_stops_the_sweep(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    await claim(engine, 6)
    smtp_sink.hang_up_at = set(range(1, 100))
    outcome = await deliverer(engine, smtp_sink, Clock(), senders=1).run(SWEEP)
    # as when the server cannot be reached: one attempt counted, the rest waits untouched
    assert (outcome.delivered, outcome.retrying, outcome.failed) == (0, 1, 0)
    assert len(smtp_sink.peers) == 1  # no reconnecting in a loop
    assert await claim_states(engine) == {("claimed", 1): 1, ("claimed", 0): 5}
