"""The notifier on FastStream's test broker: in-memory SQLite, a recording mailer, a fixed clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from faststream.nats import NatsBroker, TestNatsBroker
from sqlalchemy import insert

from contracts.calendar import add_months
from services.notifier import projection
from services.notifier.app import Deps, create_app
from services.notifier.settings import NotifierSettings
from services.notifier.store import inbox, metadata
from tests.fakes.memory import memory_engine
from tests.fakes.notifier import FakeNotify, KeysStream, RecordingTransport

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncEngine

GENERATED = datetime(2026, 1, 5, 9, tzinfo=UTC)  # when the seeded key came into use
NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)  # the fixed clock: past the 5-month email
SIX_MONTHS = add_months(GENERATED, 6)


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = await memory_engine(metadata)
    yield engine
    await engine.dispose()


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def notify_stream() -> FakeNotify:
    return FakeNotify()


class Notifier:
    """The notifier's subjects as calls returning the decoded reply `{ok, result | error}`."""

    def __init__(self, broker: NatsBroker) -> None:
        self.broker = broker

    async def ask(self, subject: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        reply = await self.broker.request(data, subject)
        return dict(orjson.loads(reply.body))

    async def result(self, subject: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
        reply = await self.ask(subject, body)
        assert reply["ok"], reply
        return dict(reply["result"])

    async def error(self, subject: str, body: dict[str, Any] | bytes) -> dict[str, str]:
        reply = await self.ask(subject, body)
        assert not reply["ok"], reply
        return dict(reply["error"])


Start = Callable[..., Any]


@pytest.fixture
def start(
    engine: AsyncEngine, transport: RecordingTransport, notify_stream: FakeNotify, tmp_path: Path
) -> Start:
    """`async with start(**settings) as notifier:` the app served by the test broker."""

    @asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[Notifier]:
        values: dict[str, Any] = {"data_dir": tmp_path, "allow_time_travel": False}
        settings = NotifierSettings(**(values | overrides))
        deps = Deps(clock=lambda: NOW, engine=engine, transport=transport, events=notify_stream)
        app = create_app(settings, deps)
        # requests go out from a client broker: the app's own broker publishes to inboxes
        # only (services.common.inboxes), and a test request is no inbox
        async with TestNatsBroker(NatsBroker(), app.broker) as (client, _):
            yield Notifier(client)

    return running


@pytest.fixture
async def notifier(start: Start) -> AsyncIterator[Notifier]:
    async with start() as running:
        yield running


async def seed(engine: AsyncEngine, *accounts: str) -> None:
    """Each account opened by alice (a super-admin, alice@<account>.io) and given a key she
    generated at GENERATED, applied through the projection like a KEYS batch."""
    stream, batch = KeysStream(GENERATED), []
    for account in accounts:
        email = f"alice@{account}.io"
        batch.append(stream.event(account, "AccountOpened", owner="alice", owner_email=email))
        key = {"key_id": f"key_{account}", "hint": "klk_…ab12", "fingerprint": "f" * 64}
        batch.append(stream.event(account, "KeyGenerated", **key))
    assert await projection.project(engine, batch) == len(batch)


async def add_to_inbox(
    engine: AsyncEngine,
    user: str,
    account: str = "acme",
    *,
    created_at: datetime = NOW,
    read_at: datetime | None = None,
) -> str:
    """A sidebar notification for `user`, written straight into the inbox table; its id."""
    item = str(uuid.uuid4())
    async with engine.begin() as conn:
        row = {
            "id": item, "user": user, "account_id": account, "key_id": f"key_{account}",
            "key_hint": "klk_…ab12", "milestone": 6, "title": f"Rotate the key of {account}",
            "message": "In use for 6 months.", "created_at": created_at, "read_at": read_at,
        }  # fmt: skip
        await conn.execute(insert(inbox).values(**row))
    return item
