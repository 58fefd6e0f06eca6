"""The registry snapshot's round trip through the database: written, read back, restored."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from contracts import keyformat
from services.common.sql import make_engine
from services.keys import snapshot as snapshot_writer
from services.keys import snapshot_load
from services.keys.registry import Registry
from services.keys.snapshot import SnapshotWriter
from services.keys.store import create_schema
from tests.drivers.snapshot import fields
from tests.unit.keys.test_registry import T0, generated, opened, raw, rotated

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncEngine

K1, K2, K3, K4 = (keyformat.generate() for _ in range(4))


def history() -> list[tuple[int, str, dict[str, Any] | None]]:
    """(stream seq, account, payload); None: a message on the subject that is not an event."""
    granted = {"kind": "SuperAdminGranted", "user": "bob", "email": "b@x.io"}
    viewed = {"kind": "KeyViewed", "key_id": "k2", "hint": "h"}
    return [
        (1, "acme", opened()),
        (2, "beta", opened()),
        (3, "acme", granted),
        (4, "acme", generated("k1", K1)),
        (5, "gamma", None),
        (6, "beta", generated("k3", K3)),
        (7, "acme", rotated("k1", "k2", K2, grace_until=T0 - timedelta(hours=1))),
        (8, "acme", viewed),
        (9, "beta", {"kind": "KeyDeactivated", "key_id": "k3"}),
        (10, "acme", {"kind": "SuperAdminRevoked", "user": "alice"}),
        (11, "acme", rotated("k2", "k4", K4, grace_until=T0 + timedelta(hours=1))),
        (12, "beta", None),
    ]


def fold(upto: int) -> Registry:
    registry, versions = Registry(), {}
    for seq, account, payload in history()[:upto]:
        if payload is None:
            registry.skip(account, seq)
            continue
        versions[account] = versions.get(account, 0) + 1
        registry.apply(seq, raw(account, versions[account], payload))
    return registry


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url)
    await create_schema(engine)
    yield engine
    await engine.dispose()


async def restored(engine: AsyncEngine, remember_after: int = 0) -> Registry:
    stored = await snapshot_load.read(engine)
    assert stored is not None
    registry = Registry()
    snapshot_load.restore(registry, stored)
    commands = await snapshot_load.read_commands(engine, remember_after=remember_after)
    snapshot_load.restore_commands(registry, commands)
    return registry


async def test_written_in_steps_and_read_back_it_equals_the_registry(engine: AsyncEngine) -> None:
    registry = fold(6)
    writer = SnapshotWriter(engine, registry, lambda: registry.last_seq)
    assert await writer.write() == 6
    assert fields(await restored(engine)) == fields(fold(6))
    for seq, account, payload in history()[6:]:  # the rest, into the same registry
        if payload is None:
            registry.skip(account, seq)
        else:
            registry.apply(seq, raw(account, registry.state(account).version + 1, payload))
    assert await writer.write() == 12
    assert fields(await restored(engine)) == fields(fold(12))


async def test_a_replica_that_is_behind_moves_no_row_back(engine: AsyncEngine) -> None:
    ahead = fold(12)
    assert await SnapshotWriter(engine, ahead, lambda: ahead.last_seq).write() == 12
    behind = fold(9)
    writer = SnapshotWriter(engine, behind, lambda: behind.last_seq)
    assert await writer.write() == 12  # its rows are older: the position stays
    assert fields(await restored(engine)) == fields(fold(12))
    # it built on the same generation from here on: what it adds later is incremental
    assert writer.generation == (await snapshot_load.read(engine)).generation  # type: ignore[union-attr]


async def test_only_the_commands_a_retry_may_repeat_are_kept(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_writer, "RECENT_COMMANDS", 4)
    registry = fold(12)
    await SnapshotWriter(engine, registry, lambda: registry.last_seq).write()
    back = await restored(engine)
    assert sorted(done.stream_seq for done in back._recent.values()) == [9, 10, 11]
    # what the follower will still fold is not loaded twice, and neither is the too old
    back = await restored(engine, remember_after=9)
    assert [done.stream_seq for done in back._recent.values()] == [10, 11]


async def test_cleared_while_a_replica_runs_it_is_written_whole_again(
    engine: AsyncEngine,
) -> None:
    registry = fold(12)
    writer = SnapshotWriter(engine, registry, lambda: registry.last_seq)
    await writer.write()
    first = writer.generation
    await snapshot_load.clear(engine)
    assert await snapshot_load.read(engine) is None
    assert await writer.write() == 12
    assert writer.generation != first
    assert fields(await restored(engine)) == fields(fold(12))
