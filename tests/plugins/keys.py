"""Fixtures that run the real keys service in-process against a real nats-server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import nats
import pytest
from faststream import TestApp
from nats.aio.client import Client

from services.keys.app import create_app
from services.keys.settings import KeysSettings
from services.keys.vault import new_master_key

Request = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def keys_settings(nats_url: str, db_url: str) -> KeysSettings:
    return KeysSettings(nats_url=nats_url, db_url=db_url, master_key=new_master_key())


@asynccontextmanager
async def running(settings: KeysSettings) -> AsyncIterator[None]:
    """One keys replica, started and stopped the way `faststream run` does it."""
    async with TestApp(create_app(settings)):
        yield


@pytest.fixture
async def keys_service(keys_settings: KeysSettings) -> AsyncIterator[KeysSettings]:
    async with running(keys_settings):
        yield keys_settings


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.drain()


@pytest.fixture
def request_json(nc: Client) -> Request:
    """Send a request as JSON (or raw bytes) and decode the reply."""

    async def send(subject: str, body: dict[str, Any] | bytes, wait: float = 5.0) -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = await nc.request(subject, data, timeout=wait)
        return json.loads(reply.data)

    return send
