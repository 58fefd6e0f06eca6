"""notify.query.sidebar, notify.query.reminders and notify.query.health: what they answer."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING

from tests.component.notifier.conftest import GENERATED, NOW, Notifier, add_to_inbox, seed

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

SIDEBAR, REMINDERS, HEALTH = "notify.query.sidebar", "notify.query.reminders", "notify.query.health"
EARLIER = NOW - timedelta(days=1)


async def test_a_user_nobody_notified_has_an_empty_sidebar(notifier: Notifier) -> None:
    assert await notifier.result(SIDEBAR, {"user": "nobody"}) == {"user": "nobody", "items": []}


async def test_the_sidebar_lists_the_users_items_newest_first_with_every_field(
    notifier: Notifier, engine: AsyncEngine
) -> None:
    older = await add_to_inbox(engine, "alice", created_at=EARLIER, read_at=NOW)
    newer = await add_to_inbox(engine, "alice")
    await add_to_inbox(engine, "bob")
    page = await notifier.result(SIDEBAR, {"user": "alice"})
    assert [item["id"] for item in page["items"]] == [newer, older]
    assert page["items"][0] == {
        "id": newer,
        "account_id": "acme",
        "key_id": "key_acme",
        "key_hint": "klk_…ab12",
        "milestone_months": 6,
        "title": "Rotate the key of acme",
        "message": "In use for 6 months.",
        "created_at": "2026-06-10T12:00:00Z",
        "read_at": None,
    }
    assert page["items"][1]["read_at"] == "2026-06-10T12:00:00Z"


async def test_the_sidebar_shows_only_unread_items_when_asked(
    notifier: Notifier, engine: AsyncEngine
) -> None:
    await add_to_inbox(engine, "alice", created_at=EARLIER, read_at=NOW)
    unread = await add_to_inbox(engine, "alice")
    page = await notifier.result(SIDEBAR, {"user": "alice", "unread_only": True})
    assert [item["id"] for item in page["items"]] == [unread]


async def test_the_sidebar_shows_one_accounts_items_when_asked(
    notifier: Notifier, engine: AsyncEngine
) -> None:
    await add_to_inbox(engine, "alice", "acme")
    beta = await add_to_inbox(engine, "alice", "beta")
    page = await notifier.result(SIDEBAR, {"user": "alice", "account_id": "beta"})
    assert [item["id"] for item in page["items"]] == [beta]


async def test_the_sidebar_returns_at_most_limit_items(
    notifier: Notifier, engine: AsyncEngine
) -> None:
    for _ in range(3):
        await add_to_inbox(engine, "alice")
    page = await notifier.result(SIDEBAR, {"user": "alice", "limit": 2})
    assert len(page["items"]) == 2


async def test_reminders_of_an_account_without_a_key_has_no_key_and_nothing_upcoming(
    notifier: Notifier,
) -> None:
    assert await notifier.result(REMINDERS, {"account_id": "acme"}) == {
        "account_id": "acme",
        "as_of": "2026-06-10T12:00:00Z",
        "key": None,
        "reminders": [],
        "upcoming": [],
    }


async def test_reminders_gives_the_keys_age_and_its_next_three_milestones(
    notifier: Notifier, engine: AsyncEngine
) -> None:
    await seed(engine, "acme")
    status = await notifier.result(REMINDERS, {"account_id": "acme"})
    assert status["key"] == {
        "key_id": "key_acme",
        "hint": "klk_…ab12",
        "in_use_since": "2026-01-05T09:00:00Z",
        "last_creator": "alice",
        "age_days": (NOW - GENERATED).days,
        "age_months": 5,
        "recommended_rotation_at": "2026-07-05T09:00:00Z",
    }
    assert status["reminders"] == []
    assert [(u["milestone_months"], u["channels"]) for u in status["upcoming"]] == [
        (5, ["email"]),
        (6, ["sidebar"]),
        (12, ["email", "sidebar"]),
    ]
    assert status["upcoming"][0] == {
        "milestone_months": 5,
        "due_at": "2026-06-05T09:00:00Z",
        "channels": ["email"],
        "recipients": ["alice"],
    }


async def test_reminders_as_of_a_date_counts_the_age_at_that_date(
    notifier: Notifier, engine: AsyncEngine
) -> None:
    await seed(engine, "acme")
    status = await notifier.result(REMINDERS, {"account_id": "acme", "as_of": "2026-03-05"})
    assert status["as_of"] == "2026-03-05T00:00:00Z"
    assert status["key"]["age_months"] == 1


async def test_health_names_the_service_its_position_its_mail_and_time_travel(
    notifier: Notifier, engine: AsyncEngine
) -> None:
    await seed(engine, "acme")
    assert await notifier.result(HEALTH, {}) == {
        "service": "notifier",
        "pid": os.getpid(),
        "stream_seq": 2,
        "following_keys": False,  # no KEYS consumer without a NATS server
        "mail": "recording transport",
        "time_travel": False,
    }


async def test_health_answers_any_json_it_is_sent(notifier: Notifier) -> None:
    for body in (b'{"anything": 1}', b"[]", b'"x"'):
        assert (await notifier.result(HEALTH, body))["service"] == "notifier"
