"""Fixtures that run the real keys service in-process against a real nats-server."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import nats
import pytest

from services.keys.settings import KeysSettings
from services.keys.vault import new_master_key
from tests.drivers import keys

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client

    from tests.drivers.keys import Request


@pytest.fixture
def keys_settings(nats_url: str, db_url: str) -> KeysSettings:
    return KeysSettings(nats_url=nats_url, db_url=db_url, master_key=new_master_key())


@pytest.fixture
async def keys_service(keys_settings: KeysSettings) -> AsyncIterator[KeysSettings]:
    async with keys.running(keys_settings):
        yield keys_settings


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.drain()


@pytest.fixture
def request_json(nc: Client) -> Request:
    """Send a request as JSON (or raw bytes) and decode the reply."""
    return partial(keys.request_json, nc)
