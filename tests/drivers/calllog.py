"""The calllog service run in-process, and what a gateway or a reader does over NATS to it."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from faststream import TestApp
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from contracts.calllog import CallRecorded, query_subject, recorded_subject
from services.calllog.app import Deps, create_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client

    from services.calllog.settings import CallLogSettings
    from tests.fakes.calllog import Clock


@asynccontextmanager
async def calllog_running(settings: CallLogSettings, clock: Clock) -> AsyncIterator[None]:
    """One calllog replica on the clock the test controls."""
    async with TestApp(create_app(settings, Deps(clock=clock))):
        yield


async def publish(nc: Client, *calls: CallRecorded, msg_id: bool = True) -> int:
    """Publish records to CALLS as a gateway does; returns the last stream sequence."""
    js = nc.jetstream()
    seq = 0
    for call in calls:
        headers = {"Nats-Msg-Id": call.call_id} if msg_id else None
        data = call.model_dump_json().encode()
        ack = await js.publish(recorded_subject(call.account_id), data, headers=headers)
        seq = ack.seq
    return seq


async def publish_raw(nc: Client, account_id: str, data: bytes) -> int:
    """Publish bytes as they are (no message id) to the account's CALLS subject."""
    ack = await nc.jetstream().publish(recorded_subject(account_id), data)
    return ack.seq


async def ingested(nc: Client, seq: int, wait: float = 10.0) -> None:
    """Wait until the projection has applied stream sequence `seq`."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        reply = json.loads((await nc.request(query_subject("health"), b"{}", timeout=2)).data)
        if reply["result"]["stream_seq"] >= seq:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"projection stuck at {reply['result']['stream_seq']} < {seq}")
        await asyncio.sleep(0.02)


async def query(nc: Client, name: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
    """One calls.query.<name> request; the decoded reply (ok or error)."""
    data = body if isinstance(body, bytes) else json.dumps(body, default=str).encode()
    timeouts = 0
    for _ in range(100):  # after a NATS restart the service takes a moment to resubscribe
        try:
            reply = await nc.request(query_subject(name), data, timeout=5)
            return dict(json.loads(reply.data))
        except NoRespondersError:
            await asyncio.sleep(0.05)
        except NatsTimeoutError:
            # sent to a replica killed a moment before the server saw it go: a client retries
            timeouts += 1
            if timeouts > 2:
                raise
    raise AssertionError(f"nobody serves {query_subject(name)}")


async def listed(nc: Client, account_id: str, **filters: Any) -> list[dict[str, Any]]:
    """Every call the list query returns for the account, following the cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = {"account_id": account_id, "limit": 1000, **filters}
        if cursor:
            body["cursor"] = cursor
        reply = await query(nc, "list", body)
        assert reply["ok"], reply
        items += reply["result"]["items"]
        cursor = reply["result"]["next_cursor"]
        if cursor is None:
            return items


async def listed_at_least(
    nc: Client, account_id: str, count: int, wait: float = 10.0
) -> list[dict[str, Any]]:
    """Wait until the log shows `count` calls for the account (ingest is asynchronous)."""
    deadline = asyncio.get_running_loop().time() + wait
    while len(items := await listed(nc, account_id)) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"only {len(items)} of {count} calls listed")
        await asyncio.sleep(0.05)
    return items
