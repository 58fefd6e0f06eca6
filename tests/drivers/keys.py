"""The keys service run in-process (as `faststream run` runs it), requests, its stored events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
from faststream import TestApp

from contracts.keys import KEYS_STREAM, event_subject
from services.keys.app import create_app

if TYPE_CHECKING:
    from nats.aio.client import Client

    from services.keys.settings import KeysSettings

# what the request_json fixture gives: (subject, body, wait=5.0) -> the decoded reply
Request = Callable[..., Awaitable[dict[str, Any]]]


@asynccontextmanager
async def running(settings: KeysSettings) -> AsyncIterator[None]:
    """One keys replica, started and stopped the way `faststream run` does it."""
    async with TestApp(create_app(settings)):
        yield


async def request_json(
    nc: Client, subject: str, body: dict[str, Any] | bytes, wait: float = 5.0
) -> Any:
    """Send a request as JSON (or raw bytes) and decode the reply."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = await nc.request(subject, data, timeout=wait)
    return json.loads(reply.data)


async def stored_events(nats_url: str, account: str) -> list[dict[str, Any]]:
    """Every event on KEYS for the account, read on a connection of its own."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    sub = await js.subscribe(event_subject(account), ordered_consumer=True)
    events = []
    last = (await js.stream_info(KEYS_STREAM.name)).state.last_seq
    while True:
        try:
            msg = await sub.next_msg(timeout=1)
        except nats.errors.TimeoutError:
            break
        events.append(json.loads(msg.data))
        if msg.metadata.sequence.stream >= last:
            break
    await nc.close()
    return events
