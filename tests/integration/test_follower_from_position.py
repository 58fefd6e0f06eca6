"""A follower started after a snapshot's position never reads what precedes it, even after
nats-server restarts and its ordered consumer is made anew."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import nats
import nats.errors
import pytest

from contracts.keys import KEYS_STREAM, event_subject
from keyledger.local.server import NatsServer
from services.common.streams import ensure_stream
from services.keys import follower as follower_module
from services.keys.follower import Follower
from services.keys.registry import Registry

if TYPE_CHECKING:
    from pathlib import Path

    from nats.js import JetStreamContext

    from services.common.eventlog import Stored

pytestmark = pytest.mark.nats
RECOVER_SECONDS = 20.0


async def published(js: JetStreamContext, account: str) -> int:
    """Publish a message on the account's subject (not an event: skipped); its sequence."""
    deadline = time.monotonic() + RECOVER_SECONDS
    while True:
        try:
            ack = await js.publish(event_subject(account), b"not an event", stream=KEYS_STREAM.name)
            return int(ack.seq)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            assert time.monotonic() < deadline, "JetStream did not come back"
            await asyncio.sleep(0.1)


async def test_after_a_nats_server_restart_it_goes_on_from_its_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[int] = []
    absorb = follower_module.absorb

    def recording(registry: Registry, stored: Stored, reader: str) -> bool:
        read.append(stored.stream_seq)
        return absorb(registry, stored, reader)

    monkeypatch.setattr(follower_module, "absorb", recording)
    with NatsServer.start(tmp_path / "jetstream", die_with_parent=True) as server:
        nc = await nats.connect(server.url, reconnect_time_wait=0.1, max_reconnect_attempts=-1)
        try:
            js = nc.jetstream()
            await ensure_stream(js, KEYS_STREAM)
            for account in ("a", "b", "c"):
                await published(js, account)
            follower = Follower(js, Registry())
            await follower.start(from_seq=4)  # as after a snapshot covering 1..3
            await follower.caught_up()
            server.kill()  # the ordered consumer dies with it, before it delivered anything
            server.respawn()
            assert await published(js, "d") == 4
            deadline = time.monotonic() + RECOVER_SECONDS
            while follower.position < 4:
                assert time.monotonic() < deadline, f"not followed again; read {read}"
                await asyncio.sleep(0.1)
            await follower.stop()
        finally:
            await nc.close()
    assert read == [4]
