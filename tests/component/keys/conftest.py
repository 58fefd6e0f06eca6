"""The keys app wired to fakes: in-memory events and vault, a fixed clock, numbered ids."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from faststream.nats import NatsBroker, TestNatsBroker

from contracts.keys import command_subject
from services.keys import projection
from services.keys.app import Overrides, create_app
from services.keys.settings import KeysSettings
from services.keys.store import create_schema
from tests.fakes.keys import FakeEvents, FakeVault
from tests.fakes.memory import memory_engine

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncEngine

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ACCOUNT = "acme"
OWNER = "alice"


@dataclass
class Keys:
    """The running app as a client sees it, and what it wrote behind the subjects."""

    client: NatsBroker
    events: FakeEvents
    vault: FakeVault
    engine: AsyncEngine

    async def ask(
        self, subject: str, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """The decoded reply to `body` (a dict is sent as JSON, bytes as they are)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = await self.client.request(data, subject, headers=headers)
        decoded = await reply.decode()
        assert isinstance(decoded, dict)
        return decoded

    async def command(self, verb: str, **fields: Any) -> dict[str, Any]:
        return await self.ask(command_subject(verb), {"account_id": ACCOUNT, **fields})

    async def refusal(self, subject: str, body: dict[str, Any] | bytes) -> str:
        """The error code of a refused request."""
        reply = await self.ask(subject, body)
        assert reply["ok"] is False, reply
        return str(reply["error"]["code"])

    def appended(self) -> list[dict[str, Any]]:
        """The envelopes the commands appended, in order."""
        return [json.loads(data) for _, data in self.events.messages]

    async def project(self) -> None:
        """Feed what was appended to the audit projection, as its durable consumer would."""
        await projection.project(self.engine, list(enumerate(self.appended(), start=1)))


@pytest.fixture
async def keys() -> AsyncIterator[Keys]:
    engine = await memory_engine()
    await create_schema(engine)
    ids = itertools.count()
    events, vault = FakeEvents(), FakeVault()
    overrides = Overrides(
        clock=lambda: NOW,
        new_id=lambda: f"id{next(ids)}",
        events=events,
        vault=vault,
        engine=engine,
    )
    app = create_app(KeysSettings(), overrides)
    # requests go out from a client broker: the app's own broker answers inboxes only
    # (services.common.inboxes), and a test request carries no inbox to answer
    async with TestNatsBroker(NatsBroker(), app.broker) as (client, _):
        yield Keys(client, events, vault, engine)
    await engine.dispose()


@pytest.fixture
async def opened(keys: Keys) -> Keys:
    """An account owned by alice, opened through its command."""
    reply = await keys.command("open_account", owner=OWNER, email="alice@example.com")
    assert reply["ok"], reply
    return keys


@pytest.fixture
async def with_key(opened: Keys) -> Keys:
    """The account with a live key, generated through its command."""
    reply = await opened.command("generate", actor=OWNER)
    assert reply["ok"], reply
    return opened
