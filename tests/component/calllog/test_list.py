"""calls.query.list's handler called directly (it is served outside FastStream)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from sqlalchemy import text

from contracts.calllog import RETENTION_SECONDS, CallPage
from services.calllog.queries.listing import answer_list
from tests.component.calllog.conftest import NOW
from tests.fakes.calllog import a_call, seed

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

WEEK = timedelta(days=7)
MINUTE = timedelta(minutes=1)


async def answer(engine: AsyncEngine, body: bytes) -> dict[str, Any]:
    return dict(orjson.loads(await answer_list(engine, body, NOW, RETENTION_SECONDS)))


async def page(engine: AsyncEngine, **fields: Any) -> CallPage:
    reply = await answer(engine, json.dumps({"account_id": "acct-1", **fields}).encode())
    assert reply["ok"] is True, reply
    return CallPage.model_validate(reply["result"])


def refusal(reply: dict[str, Any]) -> tuple[str, str]:
    assert reply["ok"] is False, reply
    return reply["error"]["code"], reply["error"]["message"]


async def test_a_page_lists_the_accounts_calls_newest_first(engine: AsyncEngine) -> None:
    calls = [a_call("acct-1", NOW - n * MINUTE, path=f"/v1/{n}") for n in (3, 1, 2)]
    await seed(engine, *calls, a_call("acct-2", NOW))
    result = await page(engine)
    assert [c.path for c in result.items] == ["/v1/1", "/v1/2", "/v1/3"]
    assert (result.account_id, result.since, result.until) == ("acct-1", NOW - WEEK, None)


async def test_an_entry_carries_every_field_of_the_call(engine: AsyncEngine) -> None:
    call = a_call("acct-1", NOW, method="POST", status=201, duration_ms=3.25, caller_ip=None)
    await seed(engine, call)
    (entry,) = (await page(engine)).items
    assert entry.model_dump() == call.model_dump(exclude={"account_id", "kind", "version"})


async def test_the_cursor_leads_through_every_call_once(engine: AsyncEngine) -> None:
    calls = [a_call("acct-1", NOW - n * MINUTE) for n in range(5)]
    calls.append(a_call("acct-1", NOW, call_id="same-time"))  # a tie, ordered by call id
    await seed(engine, *calls)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        result = await page(engine, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [c.call_id for c in result.items]
        cursor = result.next_cursor
    assert cursor is None
    assert sorted(seen) == sorted(c.call_id for c in calls)


async def test_a_full_last_page_has_no_cursor(engine: AsyncEngine) -> None:
    await seed(engine, a_call("acct-1", NOW), a_call("acct-1", NOW - MINUTE))
    assert (await page(engine, limit=2)).next_cursor is None


async def test_a_newer_call_does_not_shift_the_next_page(engine: AsyncEngine) -> None:
    await seed(engine, *(a_call("acct-1", NOW - n * MINUTE, path=f"/v1/{n}") for n in (1, 2)))
    first = await page(engine, limit=1)
    await seed(engine, a_call("acct-1", NOW, path="/v1/0"))
    second = await page(engine, limit=1, cursor=first.next_cursor)
    assert [c.path for c in second.items] == ["/v1/2"]


@pytest.mark.parametrize(
    "cursor", ["abc", "123", "123:", ":call", "-1:call", "²:call", "99999999999999999999:call"]
)
async def test_a_cursor_not_from_a_previous_page_is_invalid_request(
    engine: AsyncEngine, cursor: str
) -> None:
    body = json.dumps({"account_id": "acct-1", "cursor": cursor}).encode()
    assert refusal(await answer(engine, body)) == (
        "invalid_request",
        "cursor: not a cursor from a previous page",
    )


@pytest.mark.parametrize("limit", [0, 1001])
async def test_a_limit_outside_1_to_1000_is_invalid_request(
    engine: AsyncEngine, limit: int
) -> None:
    body = json.dumps({"account_id": "acct-1", "limit": limit}).encode()
    assert refusal(await answer(engine, body))[0] == "invalid_request"


@pytest.mark.parametrize("limit", [1, 1000])
async def test_a_limit_of_1_or_1000_is_accepted(engine: AsyncEngine, limit: int) -> None:
    await seed(engine, *(a_call("acct-1", NOW - n * MINUTE) for n in range(3)))
    assert len((await page(engine, limit=limit)).items) == min(limit, 3)


async def test_the_default_limit_is_100(engine: AsyncEngine) -> None:
    await seed(engine, *(a_call("acct-1", NOW - n * MINUTE) for n in range(101)))
    result = await page(engine)
    assert (len(result.items), result.next_cursor is not None) == (100, True)


async def test_a_call_older_than_the_retention_is_not_listed(engine: AsyncEngine) -> None:
    await seed(engine, a_call("acct-1", NOW - WEEK), a_call("acct-1", NOW - WEEK + MINUTE))
    assert len((await page(engine)).items) == 1


async def test_until_not_after_since_is_invalid_request(engine: AsyncEngine) -> None:
    moment = (NOW - MINUTE).isoformat()
    body = json.dumps({"account_id": "acct-1", "since": moment, "until": moment}).encode()
    assert refusal(await answer(engine, body)) == (
        "invalid_request",
        "until must be later than since",
    )


async def test_a_status_class_keeps_only_that_class(engine: AsyncEngine) -> None:
    await seed(engine, *(a_call("acct-1", NOW, status=s) for s in (200, 404, 429, 500)))
    result = await page(engine, status="4xx")
    assert sorted(c.status for c in result.items) == [404, 429]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"account_id": "acct-1"',
        b'{"account_id": 1}',
        b'{"account_id": "acct-1", "page": 2}',
        b'{"account_id": "acct-1", "account_id": "acct-2"}',
    ],
    ids=["empty", "malformed", "wrong-type", "unknown-field", "repeated-key"],
)
async def test_a_bad_body_is_invalid_request(engine: AsyncEngine, body: bytes) -> None:
    assert refusal(await answer(engine, body))[0] == "invalid_request"


async def test_a_database_failure_answers_unavailable(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE calllog_calls"))
    reply = await answer(engine, b'{"account_id": "acct-1"}')
    assert refusal(reply) == ("unavailable", "list could not be completed; retry")
