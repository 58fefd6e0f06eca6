"""calls.query.* over a real nats-server, on SQLite and PostgreSQL: filters, paging while
calls arrive, stats against a computed expectation, and refusals of bad parameters."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from contracts.calllog import CallPage, CallRecorded
from tests.drivers.calllog import ingested, listed, publish, query
from tests.fakes.calllog import Clock, a_call
from tests.random_refs import new_account

if TYPE_CHECKING:
    from nats.aio.client import Client

    from services.calllog.settings import CallLogSettings

pytestmark = pytest.mark.nats


def iso(moment: datetime) -> str:
    return moment.isoformat()


def ids(calls: list[CallRecorded]) -> list[str]:
    """Newest first, ties by call id, as the service orders them."""
    ordered = sorted(calls, key=lambda c: (c.ts, c.call_id), reverse=True)
    return [c.call_id for c in ordered]


async def test_filters_narrow_the_list_exactly(
    calllog_service: CallLogSettings, nc: Client, clock: Clock
) -> None:
    account, now, rng = new_account(), clock.now, random.Random(7)
    made = [
        a_call(
            account,
            now - timedelta(minutes=rng.randrange(0, 3000)),
            key_id=rng.choice(["key_a", "key_b"]),
            method=rng.choice(["GET", "POST", "DELETE"]),
            path=rng.choice(["/v1/contacts", "/v1/contacts/7", "/v1/Contacts", "/v1/%", "/v1/x"]),
            status=rng.choice([200, 201, 204, 301, 400, 401, 404, 429, 500, 503]),
        )
        for _ in range(120)
    ]
    made.append(a_call(new_account(), now, key_id="key_a"))  # another account's call: never shown
    await ingested(nc, await publish(nc, *made))
    mine = [c for c in made if c.account_id == account]
    cases: list[tuple[dict[str, Any], list[CallRecorded]]] = [
        ({}, mine),
        ({"key_id": "key_b"}, [c for c in mine if c.key_id == "key_b"]),
        ({"method": "POST"}, [c for c in mine if c.method == "POST"]),
        ({"path_prefix": "/v1/contacts"}, [c for c in mine if c.path.startswith("/v1/contacts")]),
        ({"path_prefix": "/v1/%"}, [c for c in mine if c.path == "/v1/%"]),
        ({"status": "404"}, [c for c in mine if c.status == 404]),
        ({"status": "4xx"}, [c for c in mine if 400 <= c.status <= 499]),
        (
            {"status": "5xx", "key_id": "key_a"},
            [c for c in mine if c.status >= 500 and c.key_id == "key_a"],
        ),
        (
            {"since": iso(now - timedelta(hours=10)), "until": iso(now - timedelta(hours=2))},
            [c for c in mine if now - timedelta(hours=10) <= c.ts < now - timedelta(hours=2)],
        ),
    ]
    for filters, expected in cases:
        got = [c["call_id"] for c in await listed(nc, account, **filters)]
        assert got == ids(expected), filters
    page = (await query(nc, "list", {"account_id": account, "limit": 5}))["result"]
    assert CallPage.model_validate(page).items[0].call_id == ids(mine)[0]  # the contract
    assert page["items"][0]["ts"].endswith("Z")


async def test_pages_have_no_duplicates_or_gaps_while_calls_arrive(
    calllog_service: CallLogSettings, nc: Client, clock: Clock
) -> None:
    account, now = new_account(), clock.now
    start = now - timedelta(hours=1)
    # some share a timestamp, so the call id has to break ties
    before = [a_call(account, start + timedelta(seconds=i // 3)) for i in range(250)]
    await ingested(nc, await publish(nc, *before))
    seen: list[dict[str, Any]] = []
    cursor, arrived = None, []
    for page in range(100):
        body: dict[str, Any] = {"account_id": account, "limit": 40}
        if cursor:
            body["cursor"] = cursor
        reply = (await query(nc, "list", body))["result"]
        seen += reply["items"]
        cursor = reply["next_cursor"]
        if cursor is None:
            break
        newer = a_call(account, now - timedelta(milliseconds=page))
        arrived.append(newer)
        await ingested(nc, await publish(nc, newer))
    seen_ids = [c["call_id"] for c in seen]
    # newer calls land above the cursor: the walk shows exactly what was there at its start
    assert seen_ids == ids(before)
    assert len(arrived) == 6
    assert len(await listed(nc, account)) == len(before) + len(arrived)


async def test_stats_match_a_computed_expectation(
    calllog_service: CallLogSettings, nc: Client, clock: Clock
) -> None:
    account, now, rng = new_account(), clock.now, random.Random(11)
    made = [
        a_call(
            account,
            now - timedelta(seconds=rng.randrange(0, 7 * 86400 + 7200)),  # some already too old
            key_id=rng.choice(["key_a", "key_b", "key_c"]),
            path=rng.choice([f"/v1/p{n}" for n in range(15)]),
            status=rng.choice([101, 200, 200, 200, 201, 302, 404, 429, 500]),
        )
        for _ in range(400)
    ]
    await ingested(nc, await publish(nc, *made))
    kept = [c for c in made if c.ts > now - timedelta(days=7)]
    for by, size in (("hour", 3600), ("day", 86400)):
        got = (await query(nc, "stats", {"account_id": account, "by": by, "top": 5}))["result"]
        expected_buckets: Counter[tuple[str, str]] = Counter(
            (_bucket(c.ts, size), f"{c.status // 100}xx") for c in kept
        )
        shown = {
            (b["start"], klass): n for b in got["buckets"] for klass, n in b["counts"].items() if n
        }
        assert shown == dict(expected_buckets)
        first, last_bucket = _bucket(now - timedelta(days=7), size), _bucket(now, size)
        assert (got["buckets"][0]["start"], got["buckets"][-1]["start"]) == (first, last_bucket)
        assert len(got["buckets"]) == 7 * 86400 // size + 1
        assert got["total"] == len(kept)
        classes = Counter(f"{c.status // 100}xx" for c in kept)
        assert {k: v for k, v in got["by_class"].items() if v} == dict(classes)
        errors = sum(1 for c in kept if c.status >= 400)
        assert got["error_rate"] == round(errors / len(kept), 4)
        top = Counter(c.path for c in kept)
        assert [(p["path"], p["calls"]) for p in got["top_paths"]] == sorted(
            top.items(), key=lambda item: (-item[1], item[0])
        )[:5]
        last = {k: max(c.ts for c in kept if c.key_id == k) for k in {c.key_id for c in kept}}
        assert {k["key_id"]: k["last_used_at"] for k in got["keys"]} == {
            k: _z(v) for k, v in last.items()
        }
        assert {k["key_id"]: k["calls"] for k in got["keys"]} == dict(
            Counter(c.key_id for c in kept)
        )


def _bucket(moment: datetime, size: int) -> str:
    epoch = int(moment.timestamp()) // size * size
    return _z(datetime.fromtimestamp(epoch, UTC))


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


BAD_REQUESTS: list[tuple[str, bytes]] = [
    ("list", b""),
    ("list", b"not json"),
    ("list", b"[1, 2]"),
    ("list", b"{}"),
    ("list", b'{"account_id": "a.b"}'),
    ("list", b'{"account_id": "*"}'),
    ("list", b'{"account_id": "acme", "limit": 0}'),
    ("list", b'{"account_id": "acme", "limit": 1001}'),
    ("list", b'{"account_id": "acme", "limit": "10"}'),
    ("list", b'{"account_id": "acme", "status": "6xx"}'),
    ("list", b'{"account_id": "acme", "status": "4x"}'),
    ("list", b'{"account_id": "acme", "method": "get"}'),
    ("list", b'{"account_id": "acme", "path_prefix": "v1"}'),
    ("list", b'{"account_id": "acme", "cursor": "nonsense"}'),
    ("list", b'{"account_id": "acme", "since": "2026-01-01T00:00:00"}'),
    ("list", b'{"account_id": "acme", "since": "2026-01-02T00:00Z", "until": "2026-01-01T00:00Z"}'),
    ("list", b'{"account_id": "acme", "unknown": 1}'),
    ("stats", b'{"account_id": "acme", "by": "week"}'),
    ("stats", b'{"account_id": "acme", "top": 1000}'),
    ("last_used", b'{"account_id": "acme"}'),
    ("last_used", b"\xff\xfe"),
]


async def test_bad_parameters_get_invalid_request_at_once(
    calllog_service: CallLogSettings, nc: Client
) -> None:
    for name, body in BAD_REQUESTS:
        reply = await query(nc, name, body)
        assert reply["ok"] is False, (name, body)
        assert reply["error"]["code"] == "invalid_request", (name, body, reply)
