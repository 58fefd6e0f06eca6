"""Fixtures that run the web console in-process against the real keys service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from services.console.settings import ConsoleSettings
from tests.drivers import console

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from services.keys.settings import KeysSettings


@pytest.fixture
def console_clock() -> console.Clock:
    return console.Clock()


@pytest.fixture
def console_settings(nats_url: str, db_url: str) -> ConsoleSettings:
    return ConsoleSettings(nats_url=nats_url, db_url=db_url, public_url=console.BASE)


@pytest.fixture
async def console_app(
    keys_service: KeysSettings, console_settings: ConsoleSettings, console_clock: console.Clock
) -> AsyncIterator[console.Running]:
    """The console (on the db_url database, SQLite or PostgreSQL) beside a keys service."""
    async with console.running(console_settings, console_clock) as running:
        yield running
