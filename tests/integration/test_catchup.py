"""The start's catch-up read of KEYS: every message once and in order, whatever breaks mid-read."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import nats
import pytest

from contracts.keys import ALL_EVENTS, KEYS_STREAM, event_subject
from keyledger.local.server import NatsServer
from services.common.catchup import CatchUp
from services.common.eventlog import forget_reported
from services.common.streams import ensure_stream
from services.keys.follower import Follower, catch_up
from services.keys.registry import Registry
from tests.unit.keys.test_fastfold import contents, history

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from nats.aio.client import Client
    from nats.js import JetStreamContext

pytestmark = pytest.mark.nats
HEARTBEAT = 0.2  # seconds: a stall is noticed after two, so the tests stay short
Read = list[tuple[int, str, bytes]]


async def connected(server: NatsServer) -> tuple[Client, JetStreamContext]:
    nc = await nats.connect(server.url, reconnect_time_wait=0.1, max_reconnect_attempts=-1)
    js = nc.jetstream(timeout=5)
    await ensure_stream(js, KEYS_STREAM)
    return nc, js


async def publish(js: JetStreamContext, messages: list[tuple[str, bytes]]) -> Read:
    """Publish, 200 at a time; what the stream holds, by stream sequence."""
    stored = []
    for start in range(0, len(messages), 200):
        batch = messages[start : start + 200]
        acks = await asyncio.gather(
            *(js.publish(subject, data, stream=KEYS_STREAM.name) for subject, data in batch)
        )
        stored += [(int(ack.seq), s, d) for ack, (s, d) in zip(acks, batch, strict=True)]
    return sorted(stored)


def mixed(count: int, pad: int = 0) -> list[tuple[str, bytes]]:
    """Events of many accounts and foreign messages between them (not JSON, empty, junk);
    `pad` bytes more each, so that nats-server cannot have sent them all at once."""
    junk = (b"not json", b"", b"[1,2]", b'{"stream_id":"a1"}')
    filler = b"x" * pad
    return [
        (event_subject(f"a{i % 37}"), junk[i % 4] if i % 11 == 0 else b"%d%s" % (i, filler))
        for i in range(count)
    ]


async def read_all(
    nc: Client, js: JetStreamContext, until: int, on: Callable[[Read], None] | None = None
) -> tuple[Read, CatchUp]:
    read: Read = []

    def handle(seq: int, subject: str, data: bytes) -> None:
        read.append((seq, subject, data))
        if on is not None:
            on(read)

    reader = CatchUp(nc, js, KEYS_STREAM.name, ALL_EVENTS, handle, heartbeat=HEARTBEAT)
    position = await asyncio.wait_for(reader.read(1, until), 60)
    assert position == read[-1][0]
    return read, reader


async def test_it_hands_over_every_message_once_in_order(tmp_path: Path) -> None:
    with NatsServer.start(tmp_path / "js", die_with_parent=True) as server:
        nc, js = await connected(server)
        try:
            stored = await publish(js, mixed(5000))
            read, reader = await read_all(nc, js, stored[-1][0])
            assert read == stored
            assert reader.consumers == 1
            # from the middle, as after a snapshot: the tail only
            tail: Read = []
            middle = CatchUp(nc, js, KEYS_STREAM.name, ALL_EVENTS, lambda *m: tail.append(m))
            assert await middle.read(4001, stored[-1][0]) == stored[-1][0]
            assert tail == stored[4000:]
            # nothing to read: no consumer at all
            none = CatchUp(nc, js, KEYS_STREAM.name, ALL_EVENTS, lambda *m: tail.append(m))
            assert await none.read(5001, 5000) == 5000
            assert none.consumers == 0
            assert len(tail) == 1000
            # the connection's other subscriptions are its own again
            sub = await nc.subscribe("_INBOX.check")
            await nc.publish("_INBOX.check", b"x")
            assert (await sub.next_msg(timeout=5)).data == b"x"
        finally:
            await nc.close()


async def test_it_resumes_when_its_consumer_disappears(tmp_path: Path) -> None:
    with NatsServer.start(tmp_path / "js", die_with_parent=True) as server:
        nc, js = await connected(server)
        try:
            stored = await publish(js, mixed(20_000, pad=2000))
            read: Read = []
            reader = CatchUp(
                nc, js, KEYS_STREAM.name, ALL_EVENTS, lambda *m: read.append(m), heartbeat=HEARTBEAT
            )
            control = reader._control
            deleted: list[int] = []
            admin, admin_js = await connected(server)  # the reader's connection waits on it

            async def deleting(reply: bytes, headers: Any) -> None:
                if reply and not deleted:  # a flow-control request: more is yet to come
                    deleted.append(await delete_consumers(admin_js))
                await control(reply, headers)

            reader._control = deleting  # type: ignore[method-assign]
            try:
                assert await asyncio.wait_for(reader.read(1, stored[-1][0]), 60) == stored[-1][0]
            finally:
                await admin.close()
            assert deleted == [1]
            assert read == stored
            assert reader.consumers == 2
        finally:
            await nc.close()


async def delete_consumers(js: JetStreamContext) -> int:
    """What an operator could do (no service may): delete every consumer of KEYS."""
    infos = await js.consumers_info(KEYS_STREAM.name)
    for info in infos:
        await js.delete_consumer(KEYS_STREAM.name, info.name)
    return len(infos)


async def test_it_resumes_after_a_gap_in_the_consumer_sequence(tmp_path: Path) -> None:
    with NatsServer.start(tmp_path / "js", die_with_parent=True) as server:
        nc, js = await connected(server)
        try:
            stored = await publish(js, mixed(3000))
            read: Read = []
            reader = CatchUp(
                nc, js, KEYS_STREAM.name, ALL_EVENTS, lambda *m: read.append(m), heartbeat=HEARTBEAT
            )
            # a delivery lost between nats-server and the reader, as a slow consumer loses one
            message = reader._message
            dropped: list[bytes] = []

            def losing(subject: bytes, reply: bytes, data: bytes) -> None:
                if len(read) == 1000 and not dropped:
                    dropped.append(reply)
                    return
                message(subject, reply, data)

            reader._message = losing  # type: ignore[method-assign]
            assert await asyncio.wait_for(reader.read(1, stored[-1][0]), 60) == stored[-1][0]
            assert dropped
            assert read == stored
            assert reader.consumers == 2
        finally:
            await nc.close()


async def test_it_resumes_after_a_nats_server_restart(tmp_path: Path) -> None:
    with NatsServer.start(tmp_path / "js", die_with_parent=True) as server:
        nc, js = await connected(server)
        try:
            stored = await publish(js, mixed(20_000, pad=2000))
            restarted: list[int] = []

            def restart_once(read: Read) -> None:
                if len(read) == 2000 and not restarted:
                    restarted.append(len(read))
                    server.kill()  # its in-memory consumer dies with it
                    server.respawn()

            read, reader = await read_all(nc, js, stored[-1][0], restart_once)
            assert restarted
            assert read == stored
            assert reader.consumers >= 2
        finally:
            await nc.close()


@pytest.mark.parametrize("seed", range(3))
async def test_its_registry_equals_the_ordered_followers(tmp_path: Path, seed: int) -> None:
    messages = history(seed, 400)
    with NatsServer.start(tmp_path / "js", die_with_parent=True) as server:
        nc, js = await connected(server)
        try:
            stored = await publish(js, [(m.subject, m.data) for m in messages])
            assert [s for s, _, _ in stored] == [m.stream_seq for m in messages]
            forget_reported()
            caught = Registry()
            assert await catch_up(nc, js, caught, 1) == len(messages)
            followed = Registry()
            follower = Follower(js, followed)
            await follower.start()
            await asyncio.wait_for(follower.caught_up(), 30)
            await follower.stop()
            assert caught.remember_after == followed.remember_after
            assert contents(caught) == contents(followed)
        finally:
            await nc.close()
