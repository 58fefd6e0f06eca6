"""calls.query.stats over the in-memory broker: the reply's shape and the 7-day window."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text

from contracts.calllog import CallStats, query_subject
from services.calllog.settings import CallLogSettings
from tests.component.calllog.conftest import NOW, Ask
from tests.fakes.calllog import a_call, seed

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

STATS = query_subject("stats")
WEEK = timedelta(days=7)


async def stats(ask: Ask, **fields: Any) -> CallStats:
    reply = await ask(STATS, json.dumps({"account_id": "acct-1", **fields}).encode())
    assert reply["ok"] is True, reply
    return CallStats.model_validate(reply["result"])


async def test_stats_count_calls_per_status_class(ask: Ask, engine: AsyncEngine) -> None:
    hour = timedelta(hours=1)
    await seed(
        engine,
        a_call("acct-1", NOW - hour, status=200),
        a_call("acct-1", NOW - 2 * hour, status=404),
        a_call("acct-1", NOW - 3 * hour, status=503),
    )
    result = await stats(ask)
    assert (result.total, result.error_rate) == (3, 0.6667)
    assert result.by_class == {"1xx": 0, "2xx": 1, "3xx": 0, "4xx": 1, "5xx": 1}


async def test_stats_name_the_window_they_cover(ask: Ask) -> None:
    result = await stats(ask, by="day")
    assert (result.account_id, result.key_id, result.by) == ("acct-1", None, "day")
    assert (result.since, result.until) == (NOW - WEEK, NOW)


async def test_stats_by_hour_have_a_bucket_for_every_hour_of_the_window(ask: Ask) -> None:
    result = await stats(ask, by="hour")
    assert len(result.buckets) == 7 * 24 + 1  # the hour the window starts in, to this one
    assert result.buckets[-1].start == NOW.replace(minute=0)


async def test_stats_by_day_have_a_bucket_for_every_day_of_the_window(ask: Ask) -> None:
    result = await stats(ask, by="day")
    assert [b.start.day for b in result.buckets] == [23, 24, 25, 26, 27, 28, 29, 30]


async def test_a_call_is_counted_in_the_bucket_of_its_hour(ask: Ask, engine: AsyncEngine) -> None:
    await seed(engine, a_call("acct-1", NOW - timedelta(minutes=45), status=201))
    buckets = {b.start: b.counts for b in (await stats(ask)).buckets}
    assert buckets[NOW.replace(hour=11, minute=0)]["2xx"] == 1
    assert buckets[NOW.replace(minute=0)]["2xx"] == 0


async def test_a_call_older_than_the_retention_is_not_counted(
    ask: Ask, engine: AsyncEngine
) -> None:
    await seed(
        engine,
        a_call("acct-1", NOW - WEEK - timedelta(hours=1)),
        a_call("acct-1", NOW - WEEK),  # exactly 7 days old: out
        a_call("acct-1", NOW - WEEK + timedelta(seconds=1)),
    )
    assert (await stats(ask)).total == 1


async def test_a_call_dated_in_the_future_is_not_counted(ask: Ask, engine: AsyncEngine) -> None:
    await seed(engine, a_call("acct-1", NOW + timedelta(seconds=1)), a_call("acct-1", NOW))
    assert (await stats(ask)).total == 1


@pytest.mark.parametrize("settings", [CallLogSettings(calls_retention_seconds=3600)])
async def test_a_shorter_retention_setting_narrows_the_window(
    ask: Ask, engine: AsyncEngine
) -> None:
    hour = timedelta(hours=1)
    await seed(engine, a_call("acct-1", NOW - 2 * hour), a_call("acct-1", NOW - hour / 2))
    result = await stats(ask)
    assert (result.total, result.since) == (1, NOW - hour)


async def test_stats_leave_out_other_accounts(ask: Ask, engine: AsyncEngine) -> None:
    await seed(engine, a_call("acct-1", NOW), a_call("acct-2", NOW), a_call("acct-2", NOW))
    assert (await stats(ask)).total == 1


async def test_stats_for_a_key_count_only_its_calls(ask: Ask, engine: AsyncEngine) -> None:
    await seed(engine, a_call("acct-1", NOW, key_id="key_1"), a_call("acct-1", NOW, key_id="k2"))
    result = await stats(ask, key_id="k2")
    assert (result.total, [k.key_id for k in result.keys]) == (1, ["k2"])


async def test_top_paths_are_the_busiest_first_cut_at_top(ask: Ask, engine: AsyncEngine) -> None:
    paths = ["/v1/a", "/v1/b", "/v1/b", "/v1/c", "/v1/c", "/v1/c"]
    await seed(engine, *(a_call("acct-1", NOW, path=p) for p in paths))
    result = await stats(ask, top=2)
    assert [(p.path, p.calls) for p in result.top_paths] == [("/v1/c", 3), ("/v1/b", 2)]


async def test_keys_show_calls_and_last_use_most_recent_first(
    ask: Ask, engine: AsyncEngine
) -> None:
    minute = timedelta(minutes=1)
    await seed(
        engine,
        a_call("acct-1", NOW - 3 * minute, key_id="old"),
        a_call("acct-1", NOW - 5 * minute, key_id="old"),
        a_call("acct-1", NOW - minute, key_id="new"),
    )
    keys = (await stats(ask)).keys
    assert [(k.key_id, k.calls, k.last_used_at) for k in keys] == [
        ("new", 1, NOW - minute),
        ("old", 2, NOW - 3 * minute),
    ]


async def test_a_database_failure_answers_unavailable(ask: Ask, engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE calllog_calls"))
    reply = await ask(STATS, b'{"account_id": "acct-1"}')
    assert reply == {
        "ok": False,
        "error": {"code": "unavailable", "message": "stats could not be completed; retry"},
    }
