"""Registries folded from KEYS (from sequence 1 or from the stored snapshot), and their fields."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nats

from services.common.sql import make_engine
from services.keys import snapshot_load
from services.keys.follower import Follower
from services.keys.registry import IndexEntry, Registry

if TYPE_CHECKING:
    from services.keys.snapshot_load import Stored


async def folded(nats_url: str, db_url: str | None = None) -> tuple[Registry, Stored | None]:
    """A registry caught up with KEYS: folded from sequence 1, or (db_url) restored from the
    stored snapshot and folded from its position + 1, with the snapshot it started from."""
    nc = await nats.connect(nats_url)
    engine = make_engine(db_url or "sqlite+aiosqlite://")
    registry, stored = Registry(), None
    try:
        js = nc.jetstream()
        start = 0
        if db_url is not None:
            stored = await snapshot_load.read(engine)
            assert stored is not None, "no usable snapshot was stored"
            snapshot_load.restore(registry, stored)
            start = stored.position
        follower = Follower(js, registry)
        await follower.start(from_seq=start + 1)
        await follower.caught_up()
        if stored is not None:  # as the service does: after the tail, before any command
            after = registry.remember_after
            commands = await snapshot_load.read_commands(engine, remember_after=after)
            snapshot_load.restore_commands(registry, commands)
        await follower.stop()
    finally:
        await nc.close()
        await engine.dispose()
    return registry, stored


def _entry(entry: IndexEntry) -> tuple[Any, ...]:
    # valid_reply is a cache of the reply, filled by the first verify
    return (entry.digest, entry.account_id, entry.key_id, entry.status, entry.grace_until)


def fields(registry: Registry) -> dict[str, Any]:
    """Everything a registry holds, comparable with ==; index entries shared as they must be."""
    for digest, entry in registry._index.items():
        assert registry._by_key_id[entry.key_id] is entry, digest
    for entries in registry._grace.values():
        assert all(registry._by_key_id[e.key_id] is e for e in entries)
    return {
        "accounts": registry.accounts,
        "subject_seq": registry.subject_seq,
        "last_seq": registry.last_seq,
        "index": {d: _entry(e) for d, e in registry._index.items()},
        "by_key_id": {k: _entry(e) for k, e in registry._by_key_id.items()},
        "grace": {a: [e.key_id for e in es] for a, es in registry._grace.items()},
        "admin_of": registry._admin_of,
        "recent": dict(registry._recent),
    }
