"""calls.query.clients over the in-memory broker: who called with a key, inside the window."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from contracts.calllog import MAX_CLIENTS, query_subject
from tests.component.calllog.conftest import NOW, Ask
from tests.fakes.calllog import a_call, seed

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncEngine

CLIENTS = query_subject("clients")
HOUR, MINUTE, WEEK = timedelta(hours=1), timedelta(minutes=1), timedelta(days=7)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def client(ip: str | None, agent: str | None, calls: int, last_at: datetime) -> dict[str, Any]:
    return {"caller_ip": ip, "user_agent": agent, "calls": calls, "last_at": rfc3339(last_at)}


async def clients(ask: Ask, since: datetime, key_id: str = "key_1") -> dict[str, Any]:
    body = {"account_id": "acct-1", "key_id": key_id, "since": rfc3339(since)}
    reply = await ask(CLIENTS, json.dumps(body).encode())
    assert reply["ok"] is True, reply
    return dict(reply["result"])


async def test_callers_are_grouped_by_address_and_agent_most_recent_first(
    ask: Ask, engine: AsyncEngine
) -> None:
    await seed(
        engine,
        a_call("acct-1", NOW - 50 * MINUTE, caller_ip="10.0.0.1", user_agent="cron/1"),
        a_call("acct-1", NOW - 40 * MINUTE, caller_ip="10.0.0.1", user_agent="cron/1"),
        a_call("acct-1", NOW - 5 * MINUTE, caller_ip="10.0.0.2", user_agent="app/2"),
        a_call("acct-1", NOW - 30 * MINUTE, caller_ip="10.0.0.1", user_agent="curl/8"),
    )
    assert await clients(ask, NOW - HOUR) == {
        "account_id": "acct-1",
        "key_id": "key_1",
        "since": rfc3339(NOW - HOUR),
        "calls": 4,
        "last_at": rfc3339(NOW - 5 * MINUTE),
        "clients": [
            client("10.0.0.2", "app/2", 1, NOW - 5 * MINUTE),
            client("10.0.0.1", "curl/8", 1, NOW - 30 * MINUTE),
            client("10.0.0.1", "cron/1", 2, NOW - 40 * MINUTE),
        ],
    }


async def test_a_key_nobody_called_has_no_calls_and_no_clients(
    ask: Ask, engine: AsyncEngine
) -> None:
    await seed(engine, a_call("acct-1", NOW, key_id="other"), a_call("acct-2", NOW))
    result = await clients(ask, NOW - HOUR)
    assert (result["calls"], result["last_at"], result["clients"]) == (0, None, [])


async def test_calls_before_since_or_in_the_future_are_left_out(
    ask: Ask, engine: AsyncEngine
) -> None:
    await seed(
        engine,
        a_call("acct-1", NOW - 2 * HOUR, caller_ip="10.0.0.9"),
        a_call("acct-1", NOW - HOUR),  # since is inclusive
        a_call("acct-1", NOW + MINUTE, caller_ip="10.0.0.8"),
    )
    result = await clients(ask, NOW - HOUR)
    assert result["calls"] == 1
    assert [c["caller_ip"] for c in result["clients"]] == ["127.0.0.1"]


async def test_since_is_clamped_to_the_seven_day_window(ask: Ask, engine: AsyncEngine) -> None:
    await seed(engine, a_call("acct-1", NOW - WEEK), a_call("acct-1", NOW - WEEK + MINUTE))
    result = await clients(ask, NOW - 30 * WEEK)
    assert result["since"] == rfc3339(NOW - WEEK)
    assert result["calls"] == 1  # exactly 7 days old: out, as everywhere in the call log


async def test_a_caller_without_address_or_agent_is_a_client_too(
    ask: Ask, engine: AsyncEngine
) -> None:
    await seed(engine, a_call("acct-1", NOW - MINUTE, caller_ip=None, user_agent=None))
    result = await clients(ask, NOW - HOUR)
    assert result["clients"] == [client(None, None, 1, NOW - MINUTE)]


async def test_at_most_twenty_clients_the_most_recent_but_every_call_counted(
    ask: Ask, engine: AsyncEngine
) -> None:
    many = [a_call("acct-1", NOW - (i + 1) * MINUTE, caller_ip=f"10.0.1.{i}") for i in range(25)]
    await seed(engine, *many)
    result = await clients(ask, NOW - HOUR)
    assert result["calls"] == 25
    assert len(result["clients"]) == MAX_CLIENTS == 20
    assert result["clients"][0]["caller_ip"] == "10.0.1.0"
    assert result["clients"][-1]["caller_ip"] == "10.0.1.19"


@pytest.mark.parametrize(
    "body",
    [
        b'{"account_id": "acct-1", "key_id": "key_1"}',
        b'{"account_id": "acct-1", "since": "2026-11-30T11:00:00Z"}',
        b'{"account_id": "acct-1", "key_id": "key_1", "since": "2026-11-30T11:00:00"}',
        b'{"account_id": "acct-1", "key_id": "key_1", "since": "yesterday"}',
        b'{"account_id": "acct-1", "key_id": "key 1", "since": "2026-11-30T11:00:00Z"}',
        b'{"account_id": "acct-1", "key_id": "key_1", "since": "2026-11-30T11:00:00Z", "x": 1}',
        b'{"account_id": 7, "key_id": "key_1", "since": "2026-11-30T11:00:00Z"}',
        b"[]",
        b"",
    ],
    ids=[
        "no-since",
        "no-key",
        "since-without-zone",
        "since-not-a-time",
        "bad-key-id",
        "unknown-field",
        "account-not-a-string",
        "array",
        "empty",
    ],
)
async def test_a_malformed_request_is_invalid_request(ask: Ask, body: bytes) -> None:
    reply = await ask(CLIENTS, body)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "invalid_request"
