"""The calllog app on FastStream's in-memory broker, over one in-memory SQLite database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from faststream import FastStream
from faststream.nats import NatsBroker, TestNatsBroker
from faststream.nats.testing import build_message
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.calllog import RETENTION_SECONDS
from services.calllog.app import Deps, create_app
from services.calllog.settings import CallLogSettings
from tests.fakes.calllog import Clock, memory_store

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
    broker = app.broker
    assert isinstance(broker, NatsBroker)
    async with TestNatsBroker(broker):
        yield lambda subject, body: _ask(broker, subject, body)


async def _ask(broker: NatsBroker, subject: str, body: bytes) -> dict[str, Any]:
    """The request handed to the subject's subscriber as a server would, with an inbox as
    its reply subject. `TestNatsBroker.request` sends the request itself through the
    broker's publish middlewares, and InboxRepliesOnly drops any publish to a non-inbox
    subject, the request's too; the reply here goes through it as in production."""
    (subscriber,) = [s for s in broker.subscribers if s.subject.template == subject]
    message = await build_message(body, subject, reply_to="_INBOX.component")
    answer = await subscriber.process_message(message)
    return dict(orjson.loads(answer.body))
