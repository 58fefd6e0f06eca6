"""Two keys replicas on one stream: one linear chain, no double effects, no config drift."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import TYPE_CHECKING, Any

import nats
import pytest
from faststream import FastStream, TestApp
from faststream.nats import JStream, NatsBroker, PullSub

from contracts.envelope import GENESIS_HASH, chain_hash
from contracts.keys import KEYS_STREAM
from services.common.streams import StreamMismatch, ensure_stream
from tests.drivers.keys import Request, running, stored_events
from tests.random_refs import new_account

if TYPE_CHECKING:
    from services.keys.settings import KeysSettings

pytestmark = pytest.mark.nats


async def request_from_own_connection(url: str, subject: str, body: dict[str, Any]) -> Any:
    nc = await nats.connect(url)
    try:
        reply = await nc.request(subject, json.dumps(body).encode(), timeout=30)
        return json.loads(reply.data)
    finally:
        await nc.close()


async def test_fifty_concurrent_rotates_on_two_replicas_leave_one_linear_chain(
    keys_settings: KeysSettings, request_json: Request
) -> None:
    account = new_account()
    async with running(keys_settings), running(keys_settings):
        opened = {"account_id": account, "owner": "alice", "email": "a@x.io"}
        assert (await request_json("keys.cmd.open_account", opened))["ok"]
        generate = {"account_id": account, "actor": "alice"}
        assert (await request_json("keys.cmd.generate", generate))["ok"]
        rotate = {"account_id": account, "actor": "alice", "confirm": True}
        replies = await asyncio.gather(
            *(
                request_from_own_connection(keys_settings.nats_url, "keys.cmd.rotate", rotate)
                for _ in range(50)
            )
        )
    succeeded = [r for r in replies if r["ok"]]
    refused = [r for r in replies if not r["ok"]]
    assert {r["error"]["code"] for r in refused} <= {"conflict"}
    assert len({r["result"]["key_id"] for r in succeeded}) == len(succeeded)

    events = await stored_events(keys_settings.nats_url, account)
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert len(events) == 2 + len(succeeded)
    prev = GENESIS_HASH
    for event in events:
        assert event["prev_hash"] == prev
        assert event["hash"] == chain_hash(event)
        prev = event["hash"]
    # the chain of keys is linear: every rotation retires the key the previous one made
    rotations = [e["payload"] for e in events if e["type"] == "KeyRotated"]
    for before, after in itertools.pairwise(rotations):
        assert after["old_key_id"] == before["new_key_id"]


async def test_a_command_retried_on_the_other_replica_appends_once(
    keys_settings: KeysSettings, request_json: Request
) -> None:
    account = new_account()
    body = {"account_id": account, "owner": "alice", "email": "a@x.io", "command_id": "same"}
    async with running(keys_settings), running(keys_settings):
        replies = await asyncio.gather(
            *(request_json("keys.cmd.open_account", body) for _ in range(10))
        )
        gen = {"account_id": account, "actor": "alice", "command_id": "gen-once"}
        keys = await asyncio.gather(*(request_json("keys.cmd.generate", gen) for _ in range(10)))
    assert all(r["ok"] for r in replies)
    assert {r["result"]["key"] for r in keys if r["ok"]} == {keys[0]["result"]["key"]}
    events = await stored_events(keys_settings.nats_url, account)
    assert [e["type"] for e in events] == ["AccountOpened", "KeyGenerated"]


async def test_a_consumer_of_keys_never_changes_the_stream(keys_service: KeysSettings) -> None:
    nc = await nats.connect(keys_service.nats_url)
    js = nc.jetstream()
    before = (await js.stream_info(KEYS_STREAM.name)).config

    broker = NatsBroker(keys_service.nats_url)

    @broker.subscriber(
        "keys.events.>",
        stream=JStream(KEYS_STREAM.name, declare=False),
        durable="other-service",
        pull_sub=PullSub(batch_size=10),
    )
    async def consume(body: dict[str, Any]) -> None:
        del body

    async with TestApp(FastStream(broker)):
        pass
    after = (await js.stream_info(KEYS_STREAM.name)).config
    await nc.close()
    assert after == before
    assert (after.deny_delete, after.deny_purge, after.max_age) == (True, True, 0)


async def test_the_service_refuses_a_stream_with_weaker_settings(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(name=KEYS_STREAM.name, subjects=list(KEYS_STREAM.subjects), max_age=3600)
    with pytest.raises(StreamMismatch, match="max_age"):
        await ensure_stream(js, KEYS_STREAM)
    await nc.close()
