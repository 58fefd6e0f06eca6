"""calls.query.last_used over the in-memory broker: the newest use inside the window."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

from contracts.calllog import LastUsed, query_subject
from tests.component.calllog.conftest import NOW, Ask
from tests.fakes.calllog import Clock, a_call, seed

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

LAST_USED = query_subject("last_used")
WEEK = timedelta(days=7)


async def last_used(ask: Ask, key_id: str = "key_1") -> LastUsed:
    body = json.dumps({"account_id": "acct-1", "key_id": key_id}).encode()
    reply = await ask(LAST_USED, body)
    assert reply["ok"] is True, reply
    return LastUsed.model_validate(reply["result"])


async def test_last_used_is_the_time_of_the_keys_newest_call(ask: Ask, engine: AsyncEngine) -> None:
    minute = timedelta(minutes=1)
    await seed(engine, a_call("acct-1", NOW - 9 * minute), a_call("acct-1", NOW - 2 * minute))
    result = await last_used(ask)
    assert result == LastUsed(
        account_id="acct-1", key_id="key_1", last_used_at=NOW - 2 * minute, window_start=NOW - WEEK
    )


async def test_a_key_never_used_has_no_last_use(ask: Ask, engine: AsyncEngine) -> None:
    await seed(engine, a_call("acct-1", NOW, key_id="other"))
    assert (await last_used(ask)).last_used_at is None


async def test_a_call_older_than_the_retention_is_no_last_use(
    ask: Ask, engine: AsyncEngine
) -> None:
    await seed(engine, a_call("acct-1", NOW - WEEK))  # exactly 7 days old: out
    assert (await last_used(ask)).last_used_at is None


async def test_a_use_is_forgotten_once_the_clock_passes_the_retention(
    ask: Ask, engine: AsyncEngine, clock: Clock
) -> None:
    await seed(engine, a_call("acct-1", NOW - WEEK + timedelta(seconds=1)))
    assert (await last_used(ask)).last_used_at is not None
    clock.advance(1)
    assert (await last_used(ask)).last_used_at is None


async def test_a_call_dated_in_the_future_is_no_last_use(ask: Ask, engine: AsyncEngine) -> None:
    await seed(engine, a_call("acct-1", NOW + timedelta(minutes=5)))
    assert (await last_used(ask)).last_used_at is None


async def test_the_same_key_id_in_another_account_is_no_last_use(
    ask: Ask, engine: AsyncEngine
) -> None:
    await seed(engine, a_call("acct-2", NOW))
    assert (await last_used(ask)).last_used_at is None
