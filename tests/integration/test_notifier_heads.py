"""The notifier's KEYS projection on SQLite and PostgreSQL: each account's next event, once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from contracts.envelope import GENESIS_HASH, chain_hash
from services.notifier import projection
from services.notifier.store import create_schema, heads, keys, notifier_engine

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncEngine

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
HINT = {"hint": "klk_…abcd", "fingerprint": "f" * 64}


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = notifier_engine(db_url)
    await create_schema(engine)
    yield engine
    await engine.dispose()


class Account:
    """Events of one account as the keys service appends them: numbered and hash-chained."""

    def __init__(self, account_id: str) -> None:
        self.id, self.sequence, self.hash = account_id, 0, GENESIS_HASH

    def next(self, kind: str, **payload: Any) -> dict[str, Any]:
        self.sequence += 1
        raw = {
            "event_id": str(uuid.uuid4()), "type": kind, "version": 1, "stream_id": self.id,
            "sequence": self.sequence, "prev_hash": self.hash,
            "occurred_at": (T0 + timedelta(minutes=self.sequence)).isoformat(),
            "actor": "alice", "correlation_id": "c", "causation_id": "c",
            "payload": {"kind": kind, **payload},
        }  # fmt: skip
        raw["hash"] = self.hash = chain_hash(raw)
        return raw


async def state(engine: AsyncEngine) -> tuple[dict[str, str], dict[str, int], int]:
    """Live key per account, head sequence per account, tracking position."""
    async with engine.connect() as conn:
        live = {a: k for a, k in await conn.execute(select(keys.c.account_id, keys.c.key_id))}
        chain = {a: n for a, n in await conn.execute(select(heads.c.account_id, heads.c.sequence))}
    return live, chain, await projection.position(engine)


async def test_a_batch_delivered_again_or_overlapping_applies_nothing_twice(
    engine: AsyncEngine,
) -> None:
    acme, beta = Account("acme"), Account("beta")
    first = [
        (1, acme.next("AccountOpened", owner="alice", owner_email="a@x.io")),
        (2, acme.next("KeyGenerated", key_id="k1", **HINT)),
        (3, beta.next("AccountOpened", owner="bob", owner_email="b@x.io")),
    ]
    second = [
        (4, acme.next("KeyRotated", old_key_id="k1", new_key_id="k2", **HINT)),
        (5, beta.next("KeyGenerated", key_id="k3", **HINT)),
    ]
    assert await projection.project(engine, first) == 3
    assert await projection.project(engine, first) == 0  # redelivered after a lost ack
    assert await projection.project(engine, first[1:] + second) == 2  # overlapping
    assert await projection.project(engine, second) == 0
    assert await state(engine) == ({"acme": "k2", "beta": "k3"}, {"acme": 3, "beta": 2}, 5)


async def test_an_old_event_published_again_changes_nothing_and_the_chain_goes_on(
    engine: AsyncEngine,
) -> None:
    acme = Account("acme")
    opened = acme.next("AccountOpened", owner="alice", owner_email="a@x.io")
    generated = acme.next("KeyGenerated", key_id="k1", **HINT)
    gone = acme.next("KeyDeactivated", key_id="k1", hint="klk_…abcd")
    await projection.project(engine, [(1, opened), (2, generated), (3, gone)])
    # the copy comes in a batch of its own, and again beside the account's next real event
    assert await projection.project(engine, [(4, generated)]) == 0
    assert await state(engine) == ({}, {"acme": 3}, 4)
    fresh = acme.next("KeyGenerated", key_id="k2", **HINT)
    assert await projection.project(engine, [(5, dict(opened)), (6, fresh)]) == 1
    assert await state(engine) == ({"acme": "k2"}, {"acme": 4}, 6)


async def test_a_first_event_must_start_the_chain(engine: AsyncEngine) -> None:
    acme = Account("acme")
    acme.next("AccountOpened", owner="alice", owner_email="a@x.io")
    # seen without its predecessor (say an account's events copied from another stream)
    later = acme.next("KeyGenerated", key_id="k1", **HINT)
    assert await projection.project(engine, [(1, later)]) == 0
    assert await state(engine) == ({}, {}, 1)
