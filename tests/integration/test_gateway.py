"""The gateway middleware against a real ASGI app, the real keys and calllog services."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from contracts.calllog import account_subject
from keyledger.gateway import Gateway, KeyledgerMiddleware
from keyledger.gateway import example as example_gateway
from services.calllog.store import calls
from services.common.sql import make_engine
from tests.drivers.calllog import listed_at_least
from tests.fakes.calllog import Clock, a_call
from tests.random_refs import new_account

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client
    from starlette.requests import Request

    from keyledger.local.server import NatsServer
    from services.calllog.settings import CallLogSettings
    from services.keys.settings import KeysSettings
    from tests.drivers.keys import Request as KeysRequest

pytestmark = [
    pytest.mark.nats,
    # the database is not under test here: SQLite only keeps the set fast
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


@pytest.fixture
def clock() -> Clock:
    return Clock(None)  # the gateway stamps calls with the real time


@pytest.fixture
async def gateway(
    nats_url: str, keys_service: KeysSettings, calllog_service: CallLogSettings
) -> AsyncIterator[Gateway]:
    link = Gateway(nats_url)
    await link.start()
    yield link
    await link.stop()


class App:
    """A tiny API that counts how often it is reached."""

    def __init__(self) -> None:
        self.hits: list[dict[str, Any]] = []

    def asgi(self, gateway: Gateway) -> KeyledgerMiddleware:
        async def ping(request: Request) -> JSONResponse:
            self.hits.append(dict(request.scope["keyledger"]))
            return JSONResponse({"pong": True})

        async def create(request: Request) -> PlainTextResponse:
            self.hits.append(dict(request.scope["keyledger"]))
            return PlainTextResponse("made", status_code=201)

        async def boom(request: Request) -> PlainTextResponse:
            self.hits.append(dict(request.scope["keyledger"]))
            raise RuntimeError("the app failed")

        routes = [
            Route("/v1/ping", ping),
            Route("/v1/things", create, methods=["POST"]),
            Route("/v1/boom", boom),
        ]
        return KeyledgerMiddleware(Starlette(routes=routes), gateway)


@pytest.fixture
def api() -> App:
    return App()


@pytest.fixture
async def http(api: App, gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api.asgi(gateway), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
        yield client


async def account_with_key(request_json: KeysRequest) -> tuple[str, dict[str, Any]]:
    account = new_account()
    body = {"account_id": account, "owner": "alice", "email": "alice@example.com"}
    assert (await request_json("keys.cmd.open_account", body))["ok"]
    made = await request_json("keys.cmd.generate", {"account_id": account, "actor": "alice"})
    return account, made["result"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "User-Agent": "gateway-test/1.0"}


async def test_a_valid_key_passes_and_the_call_is_recorded_with_its_fields(
    http: httpx.AsyncClient, api: App, nc: Client, request_json: KeysRequest
) -> None:
    account, key = await account_with_key(request_json)
    before = datetime.now(UTC)
    answer = await http.get("/v1/ping", headers=bearer(key["key"]))
    assert answer.status_code == 200
    made = await http.post("/v1/things", headers={"X-API-Key": key["key"]})
    assert made.status_code == 201
    assert api.hits == [{"account_id": account, "key_id": key["key_id"]}] * 2

    newest, oldest = await listed_at_least(nc, account, 2)
    assert (newest["method"], newest["path"], newest["status"]) == ("POST", "/v1/things", 201)
    assert oldest["key_id"] == key["key_id"]
    assert (oldest["method"], oldest["path"], oldest["status"]) == ("GET", "/v1/ping", 200)
    assert oldest["caller_ip"] == "127.0.0.1"
    assert oldest["user_agent"] == "gateway-test/1.0"
    assert 0 <= oldest["duration_ms"] < 5000
    assert before <= datetime.fromisoformat(oldest["ts"]) <= datetime.now(UTC)


async def test_an_app_failure_is_recorded_as_a_500(
    http: httpx.AsyncClient, nc: Client, request_json: KeysRequest
) -> None:
    account, key = await account_with_key(request_json)
    assert (await http.get("/v1/boom", headers=bearer(key["key"]))).status_code == 500
    (call,) = await listed_at_least(nc, account, 1)
    assert (call["path"], call["status"]) == ("/v1/boom", 500)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing_key"),
        ({"Authorization": "Bearer klk_not-a-key"}, "invalid_key"),
        ({"X-API-Key": "klk_" + "0" * 39}, "invalid_key"),
    ],
)
async def test_a_missing_or_bad_key_gets_401_and_never_reaches_the_app(
    http: httpx.AsyncClient, api: App, headers: dict[str, str], code: str
) -> None:
    answer = await http.get("/v1/ping", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == code
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert api.hits == []


async def test_two_different_keys_in_one_request_get_400_and_never_reach_the_app(
    http: httpx.AsyncClient, api: App, request_json: KeysRequest
) -> None:
    account, mine = await account_with_key(request_json)
    _, theirs = await account_with_key(request_json)  # valid too, for another account
    a, b = mine["key"], theirs["key"]
    ambiguous = [
        [("Authorization", f"Bearer {a}"), ("X-API-Key", b)],
        [("X-API-Key", b), ("Authorization", f"Bearer {a}")],
        [("X-API-Key", a), ("X-API-Key", b)],
        [("Authorization", f"Bearer {a}"), ("Authorization", f"Bearer {b}")],
    ]
    for headers in ambiguous:
        answer = await http.get("/v1/ping", headers=headers)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "ambiguous_key"
        assert a not in answer.text
        assert b not in answer.text
    assert api.hits == []
    same = [("Authorization", f"Bearer {a}"), ("X-API-Key", a)]
    assert (await http.get("/v1/ping", headers=same)).status_code == 200
    assert api.hits == [{"account_id": account, "key_id": mine["key_id"]}]


async def test_the_example_api_refuses_a_body_naming_a_key_twice(
    gateway: Gateway, request_json: KeysRequest
) -> None:
    _, key = await account_with_key(request_json)
    transport = httpx.ASGITransport(app=example_gateway.create_app(gateway=gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
        twice = b'{"name": "Ann", "email": "ann@example.com", "name": "Eve"}'
        refused = await client.post("/v1/contacts", content=twice, headers=bearer(key["key"]))
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid_request")
        once = b'{"name": "Ann", "email": "ann@example.com"}'
        made = await client.post("/v1/contacts", content=once, headers=bearer(key["key"]))
        assert made.status_code == 201
        listed = (await client.get("/v1/contacts", headers=bearer(key["key"]))).json()
    assert [c["name"] for c in listed["contacts"]] == ["Ann"]


async def test_a_deactivated_or_rotated_out_key_gets_401(
    http: httpx.AsyncClient, api: App, nc: Client, request_json: KeysRequest
) -> None:
    account, key = await account_with_key(request_json)
    rotated = await request_json(
        "keys.cmd.rotate", {"account_id": account, "actor": "alice", "confirm": True}
    )
    old = await http.get("/v1/ping", headers=bearer(key["key"]))
    assert (old.status_code, old.json()["error"]["code"]) == (401, "invalid_key")
    assert "deactivated" in old.json()["error"]["message"]
    new_key = rotated["result"]["key"]
    assert (await http.get("/v1/ping", headers=bearer(new_key))).status_code == 200
    await request_json(
        "keys.cmd.deactivate", {"account_id": account, "actor": "alice", "confirm": True}
    )
    assert (await http.get("/v1/ping", headers=bearer(new_key))).status_code == 401
    assert len(api.hits) == 1
    (only,) = await listed_at_least(nc, account, 1)
    assert only["key_id"] == rotated["result"]["key_id"]


async def test_a_key_in_the_query_string_is_neither_accepted_nor_stored(
    http: httpx.AsyncClient,
    nc: Client,
    request_json: KeysRequest,
    calllog_service: CallLogSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    account, key = await account_with_key(request_json)
    secret = key["key"]
    alone = await http.get(f"/v1/ping?hapikey={secret}")
    assert alone.status_code == 401  # URL-borne keys are refused outright
    answer = await http.get(f"/v1/ping?hapikey={secret}&page=2", headers=bearer(secret))
    assert answer.status_code == 200
    (call,) = await listed_at_least(nc, account, 1)
    assert call["path"] == "/v1/ping"

    engine = make_engine(calllog_service.db_url)
    async with engine.connect() as conn:
        rows = [str(tuple(r)) for r in (await conn.execute(select(calls))).all()]
    await engine.dispose()
    assert rows
    assert all(secret not in row and "hapikey" not in row for row in rows)
    db_file = Path(calllog_service.db_url.split("///", 1)[1])
    for path in (db_file, db_file.with_name(db_file.name + "-wal")):  # every byte on disk
        if path.exists():
            assert secret.encode() not in await asyncio.to_thread(path.read_bytes)
    stream = await nc.jetstream().get_last_msg("CALLS", account_subject(account))
    assert secret.encode() not in (stream.data or b"")
    assert b"hapikey" not in (stream.data or b"")
    assert secret not in caplog.text


async def test_calls_waiting_while_nats_is_down_are_recorded_once_it_is_back(
    nats_server: NatsServer,
    nats_url: str,
    keys_service: KeysSettings,
    calllog_service: CallLogSettings,
    nc: Client,
    request_json: KeysRequest,
) -> None:
    account, key = await account_with_key(request_json)
    link = Gateway(nats_url, timeout=0.3)
    await link.start()
    nats_server.stop()
    try:
        waiting = [a_call(account, datetime.now(UTC), key_id=key["key_id"]) for _ in range(300)]
        for call in waiting:
            link.record(call)
        assert not await link.buffer.flush(1.0)  # nothing can be acknowledged now
        assert link.buffer.retries >= 1
    finally:
        nats_server.restart()
    assert await link.buffer.flush(15)
    await link.stop()
    stored = await listed_at_least(nc, account, len(waiting), wait=15)
    assert sorted(c["call_id"] for c in stored) == sorted(c.call_id for c in waiting)
    assert link.buffer.dropped == 0


async def test_calls_served_across_a_nats_restart_are_all_recorded(
    nats_server: NatsServer, http: httpx.AsyncClient, nc: Client, request_json: KeysRequest
) -> None:
    account, key = await account_with_key(request_json)
    served: list[int] = []
    stop = asyncio.Event()

    async def traffic() -> None:
        while not stop.is_set():
            answer = await http.get("/v1/ping", headers=bearer(key["key"]))
            served.append(answer.status_code)  # 503 while keys.verify cannot be reached

    loops = [asyncio.create_task(traffic()) for _ in range(4)]
    await asyncio.sleep(0.3)
    await asyncio.to_thread(nats_server.restart)
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*loops)
    ok = served.count(200)
    assert ok > 0
    assert set(served) <= {200, 503}
    stored = await listed_at_least(nc, account, ok, wait=20)
    assert len(stored) == ok
