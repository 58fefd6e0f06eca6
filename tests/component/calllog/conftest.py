"""The calllog app on FastStream's in-memory broker, over one in-memory SQLite database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from faststream.nats import NatsBroker, TestNatsBroker

from contracts.calllog import RETENTION_SECONDS
from services.calllog.app import Deps, create_app
from services.calllog.settings import CallLogSettings
from tests.fakes.calllog import Clock, memory_store

if TYPE_CHECKING:
    from faststream import FastStream
    from sqlalchemy.ext.asyncio import AsyncEngine

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)
Ask = Callable[[str, bytes], Awaitable[dict[str, Any]]]


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = await memory_store()
    yield engine
    await engine.dispose()


@pytest.fixture
def settings() -> CallLogSettings:
    # explicit, so a KEYLEDGER_* variable in the environment changes nothing here
    return CallLogSettings(calls_retention_seconds=RETENTION_SECONDS)


@pytest.fixture
def app(settings: CallLogSettings, engine: AsyncEngine, clock: Clock) -> FastStream:
    return create_app(settings, Deps(clock=clock, engine=engine))


@pytest.fixture
async def ask(app: FastStream) -> AsyncIterator[Ask]:
    """Request a FastStream-served subject; the decoded reply."""
    # requests go out from a client broker: the app's own broker answers inboxes only
    # (services.common.inboxes), and a test request carries no inbox to answer
    async with TestNatsBroker(NatsBroker(), app.broker) as (client, _):

        async def ask(subject: str, body: bytes) -> dict[str, Any]:
            reply = await client.request(body, subject)
            return dict(orjson.loads(reply.body))

        yield ask
