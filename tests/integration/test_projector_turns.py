"""Projector replicas on one durable: every message applied once, in order, even after a crash."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import nats
import pytest
from nats.js import api

from services.common.projector import Projector
from services.common.pull import BatchPull
from services.common.sql import make_engine
from services.common.turn import turn_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client
    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.nats

STREAM, SUBJECT, DURABLE = "TURNS", "turns.>", "turns-projection"


class Projection:
    """A tracking row and its rows in memory, with the skip rule the real projections use."""

    def __init__(self) -> None:
        self.last = 0
        self.applied: list[int] = []

    async def position(self) -> int:
        return self.last

    async def apply(self, batch: list[tuple[int, dict[str, Any] | None]]) -> None:
        for seq, _ in batch:
            if seq > self.last:
                self.applied.append(seq)
                self.last = seq
            await asyncio.sleep(0)  # let another replica run mid-batch, as a database would

    async def reaches(self, seq: int) -> None:
        for _ in range(500):
            if self.last >= seq:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"stuck at {self.last} < {seq}")


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """Only the turn lives in it: a PostgreSQL advisory lock, or a lock file beside SQLite."""
    found = make_engine(db_url)
    yield found
    await found.dispose()


@pytest.fixture
async def js_nc(nats_url: str) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_url)
    await nc.jetstream().add_stream(name=STREAM, subjects=[SUBJECT])
    yield nc
    await nc.close()


async def publish(nc: Client, count: int) -> int:
    js = nc.jetstream()
    acks = await asyncio.gather(*(js.publish(f"turns.{i % 7}", b"{}") for i in range(count)))
    return max(a.seq for a in acks)


def replica(nc: Client, projection: Projection, engine: AsyncEngine, batch: int = 50) -> Projector:
    return Projector(
        nc.jetstream(),
        nc,
        stream=STREAM,
        subject=SUBJECT,
        durable=DURABLE,
        apply=projection.apply,
        position=projection.position,
        turn=turn_for(engine, DURABLE),
        batch=batch,
    )


async def test_replicas_take_turns_so_every_message_is_applied_once_in_order(
    js_nc: Client, nats_url: str, engine: AsyncEngine
) -> None:
    projection = Projection()
    others = [await nats.connect(nats_url) for _ in range(2)]
    replicas = [replica(nc, projection, engine) for nc in [js_nc, *others]]
    for r in replicas:
        await r.start()
    try:
        # published while all three wait with pull requests: the server would hand the
        # messages round-robin to every waiting request
        last = 0
        for _ in range(5):
            last = await publish(js_nc, 300)
        await projection.reaches(last)
    finally:
        for r in replicas:
            await r.stop()
        for nc in others:
            await nc.close()
    assert projection.applied == list(range(1, last + 1))


async def test_messages_a_dead_replica_held_are_read_back_at_once(
    js_nc: Client, nats_url: str, engine: AsyncEngine
) -> None:
    projection = Projection()
    first = await publish(js_nc, 20)
    config = api.ConsumerConfig(
        durable_name=DURABLE,
        filter_subject=SUBJECT,
        ack_policy=api.AckPolicy.ALL,
        max_ack_pending=50,
        ack_wait=30,
    )
    await js_nc.jetstream().add_consumer(STREAM, config)
    doomed = await nats.connect(nats_url)
    pull = BatchPull(doomed, STREAM, DURABLE)
    await pull.start()
    held = await pull.fetch(8, timeout=1)
    assert len(held) == 8
    await doomed.close()  # died holding 1..8, never acknowledged: back only after 30 s

    survivor = replica(js_nc, projection, engine)
    await survivor.start()
    try:
        last = await publish(js_nc, 10)
        await projection.reaches(last)  # well within ack_wait
    finally:
        await survivor.stop()
    assert first == 20
    assert projection.applied == list(range(1, last + 1))
