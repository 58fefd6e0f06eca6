"""notify.cmd.mark_read: the user's own items become read, once; anything else is unknown."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from tests.component.notifier.conftest import NOW, Notifier, Start, add_to_inbox

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

MARK_READ, SIDEBAR = "notify.cmd.mark_read", "notify.query.sidebar"


async def read_at(notifier: Notifier, user: str) -> dict[str, str | None]:
    page = await notifier.result(SIDEBAR, {"user": user})
    return {item["id"]: item["read_at"] for item in page["items"]}


async def test_marking_an_item_read_records_the_time_and_says_it_was_marked(
    notifier: Notifier, engine: AsyncEngine
) -> None:
    item = await add_to_inbox(engine, "alice")
    reply = await notifier.result(MARK_READ, {"user": "alice", "ids": [item]})
    assert reply == {"user": "alice", "marked": [item], "unknown": []}
    assert await read_at(notifier, "alice") == {item: "2026-06-10T12:00:00Z"}


async def test_an_id_nobody_was_sent_is_unknown(notifier: Notifier) -> None:
    missing = str(uuid.uuid4())
    reply = await notifier.result(MARK_READ, {"user": "alice", "ids": [missing]})
    assert reply == {"user": "alice", "marked": [], "unknown": [missing]}


async def test_another_users_item_is_unknown_and_stays_unread(
    notifier: Notifier, engine: AsyncEngine
) -> None:
    bobs = await add_to_inbox(engine, "bob")
    reply = await notifier.result(MARK_READ, {"user": "alice", "ids": [bobs]})
    assert reply == {"user": "alice", "marked": [], "unknown": [bobs]}
    assert await read_at(notifier, "bob") == {bobs: None}


async def test_an_item_read_before_keeps_its_first_read_time(
    notifier: Notifier, engine: AsyncEngine
) -> None:
    first = NOW - timedelta(days=3)
    item = await add_to_inbox(engine, "alice", created_at=first, read_at=first)
    reply = await notifier.result(MARK_READ, {"user": "alice", "ids": [item]})
    assert reply["marked"] == [item]
    assert await read_at(notifier, "alice") == {item: "2026-06-07T12:00:00Z"}


async def test_ids_given_twice_are_answered_once_in_order(
    notifier: Notifier, engine: AsyncEngine
) -> None:
    one, two = await add_to_inbox(engine, "alice"), await add_to_inbox(engine, "alice")
    reply = await notifier.result(MARK_READ, {"user": "alice", "ids": [two, one, two]})
    assert reply["marked"] == sorted([one, two])


async def test_an_empty_list_of_ids_is_an_invalid_request(notifier: Notifier) -> None:
    error = await notifier.error(MARK_READ, {"user": "alice", "ids": []})
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("ids:")


async def test_an_id_that_is_no_reminder_id_is_an_invalid_request_and_marks_nothing(
    start: Start, engine: AsyncEngine
) -> None:
    item = await add_to_inbox(engine, "alice")
    async with start() as notifier:
        error = await notifier.error(MARK_READ, {"user": "alice", "ids": [item, "not-an-id"]})
        assert error["code"] == "invalid_request"
        assert await read_at(notifier, "alice") == {item: None}
