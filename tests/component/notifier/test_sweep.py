"""notify.cmd.sweep: the time-travel guard, delivery by the mail transport, ReminderSent."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import orjson

from services.notifier.reminders.mailer import DeliveryError
from tests.component.notifier.conftest import (
    NOW,
    SIX_MONTHS,
    Notifier,
    Start,
    seed,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.fakes.notifier import FakeNotify, RecordingTransport

SWEEP, REMINDERS, SIDEBAR = "notify.cmd.sweep", "notify.query.reminders", "notify.query.sidebar"
TIME_TRAVEL_MESSAGE = (
    "as_of is in the future; run the notifier with "
    "KEYLEDGER_ALLOW_TIME_TRAVEL=1 (keyledger up --dev) to allow it"
)


async def test_a_sweep_as_of_the_future_is_refused_while_time_travel_is_off(
    notifier: Notifier,
) -> None:
    as_of = (NOW + timedelta(minutes=2)).isoformat()
    assert await notifier.error(SWEEP, {"as_of": as_of}) == {
        "code": "time_travel_disabled",
        "message": TIME_TRAVEL_MESSAGE,
    }


async def test_a_refused_sweep_claims_and_sends_nothing(
    notifier: Notifier, engine: AsyncEngine, transport: RecordingTransport
) -> None:
    await seed(engine, "acme")
    await notifier.error(SWEEP, {"as_of": SIX_MONTHS.isoformat()})
    assert transport.sent == []
    assert (await notifier.result(REMINDERS, {"account_id": "acme"}))["reminders"] == []


async def test_an_as_of_within_a_minute_of_now_is_not_time_travel(notifier: Notifier) -> None:
    as_of = NOW + timedelta(seconds=30)
    result = await notifier.result(SWEEP, {"as_of": as_of.isoformat()})
    assert result["as_of"] == "2026-06-10T12:00:30Z"


async def test_a_sweep_as_of_the_future_runs_when_time_travel_is_on(
    start: Start, engine: AsyncEngine, transport: RecordingTransport
) -> None:
    await seed(engine, "acme")
    async with start(allow_time_travel=True) as notifier:
        result = await notifier.result(SWEEP, {"as_of": SIX_MONTHS.isoformat()})
        sidebar = await notifier.result(SIDEBAR, {"user": "alice"})
    assert (result["due_keys"], result["claimed"], result["delivered"]) == (1, 1, 1)
    assert [item["milestone_months"] for item in sidebar["items"]] == [6]
    assert transport.sent == []  # the six-month milestone is a sidebar one only


async def test_a_sweep_without_as_of_sweeps_as_of_the_clock_and_replies_with_every_count(
    notifier: Notifier, engine: AsyncEngine
) -> None:
    await seed(engine, "acme")
    assert await notifier.result(SWEEP, {}) == {
        "as_of": "2026-06-10T12:00:00Z",
        "due_keys": 1,
        "claimed": 1,
        "delivered": 1,
        "retrying": 0,
        "failed": 0,
        "cancelled": 0,
        "published": 1,
        "waiting": 0,
    }


async def test_a_due_email_goes_to_the_mail_transport_once(
    notifier: Notifier, engine: AsyncEngine, transport: RecordingTransport
) -> None:
    await seed(engine, "acme")
    await notifier.result(SWEEP, {})
    again = await notifier.result(SWEEP, {})
    assert transport.recipients == ["alice@acme.io"]
    assert (again["due_keys"], again["claimed"], again["delivered"]) == (0, 0, 0)


async def test_a_delivered_reminder_is_published_once_as_reminder_sent(
    notifier: Notifier, engine: AsyncEngine, notify_stream: FakeNotify
) -> None:
    await seed(engine, "acme")
    await notifier.result(SWEEP, {})
    await notifier.result(SWEEP, {})
    [(subject, data)] = notify_stream.messages
    event = orjson.loads(data)
    assert subject == "notify.events.acme"
    assert (event["type"], event["sequence"], event["stream_id"]) == ("ReminderSent", 1, "acme")
    assert event["payload"]["recipient"] == "alice"


async def test_a_refused_email_is_retried_later_and_listed_with_its_error(
    notifier: Notifier, engine: AsyncEngine, transport: RecordingTransport
) -> None:
    await seed(engine, "acme")
    transport.fail(1)
    result = await notifier.result(SWEEP, {})
    assert (result["delivered"], result["retrying"], result["waiting"]) == (0, 1, 1)
    [reminder] = (await notifier.result(REMINDERS, {"account_id": "acme"}))["reminders"]
    assert (reminder["state"], reminder["attempts"]) == ("claimed", 1)
    assert reminder["last_error"] == "451 try again later"


async def test_a_permanent_refusal_fails_the_reminder_for_good(
    notifier: Notifier, engine: AsyncEngine, transport: RecordingTransport
) -> None:
    await seed(engine, "acme")
    transport.fail(1, DeliveryError("550 no such user", permanent=True))
    result = await notifier.result(SWEEP, {})
    assert (result["delivered"], result["failed"], result["waiting"]) == (0, 1, 0)
    [reminder] = (await notifier.result(REMINDERS, {"account_id": "acme"}))["reminders"]
    assert reminder["state"] == "failed"
