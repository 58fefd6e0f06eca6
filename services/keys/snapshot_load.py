"""Reading the registry snapshot back: which one is usable, and the registry rebuilt from it."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from services.keys.snapshot_rows import SCHEMA, decode_account, decode_applied
from services.keys.store import snapshot, snapshot_accounts, snapshot_commands

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.keys.registry import Applied, IndexEntry, Registry

log = logging.getLogger("keyledger.keys")
NAME = "registry"  # the one snapshot row's key


@dataclass
class Stored:
    """A usable snapshot as read: the KEYS position its rows cover and their generation."""

    position: int
    generation: str
    # (account_id, subject_seq, state) and (account_id, command_id, stream_seq, applied)
    accounts: Sequence[Sequence[Any]] = ()
    commands: Sequence[Sequence[Any]] = ()


async def read(engine: AsyncEngine, *, remember_after: int) -> Stored | None:
    """The stored snapshot, or None (logged why) when a full replay must rebuild the registry:
    there is none, it was cleared, or another snapshot schema wrote it."""
    async with engine.connect() as conn:
        meta = (await conn.execute(select(snapshot).where(snapshot.c.name == NAME))).first()
        if meta is None or not meta.generation:
            log.info("keys: no registry snapshot; replaying KEYS from the start")
            return None
        if meta.schema != SCHEMA:
            log.warning(
                "keys: registry snapshot has schema %d, this build writes %d; replaying KEYS "
                "from the start",
                meta.schema,
                SCHEMA,
            )
            return None
        accounts = (await conn.execute(select(snapshot_accounts))).all()
        # only the commands a retry may still repeat, in the order they were applied
        commands = select(snapshot_commands).where(snapshot_commands.c.stream_seq > remember_after)
        done = (await conn.execute(commands.order_by(snapshot_commands.c.stream_seq))).all()
        return Stored(int(meta.position), meta.generation, accounts, done)


async def clear(engine: AsyncEngine) -> None:
    """Drop the snapshot (what `keyledger keys snapshot clear` does): the next start replays."""
    async with engine.begin() as conn:
        await conn.execute(delete(snapshot))
        await conn.execute(delete(snapshot_accounts))
        await conn.execute(delete(snapshot_commands))


def restore(registry: Registry, stored: Stored) -> None:
    """Fill an empty registry from the snapshot, as folding KEYS up to its position would."""
    accounts, subject_seq = registry.accounts, registry.subject_seq
    index, by_key_id, grace = registry._index, registry._by_key_id, registry._grace
    admin_of = registry._admin_of
    last = stored.position
    for account_id, seq, text in stored.accounts:
        subject_seq[account_id] = seq
        last = max(last, seq)  # a replica's own append can be applied ahead of its follower
        if text is None:
            continue
        state, entries = decode_account(account_id, text)
        accounts[account_id] = state
        for user in state.admins:
            admin_of.setdefault(user, set()).add(account_id)
        _index_entries(entries, index, by_key_id, grace)
    registry.last_seq = last
    recent: OrderedDict[tuple[str, str], Applied] = OrderedDict()
    for account_id, command_id, stream_seq, applied in stored.commands:
        recent[(account_id, command_id)] = decode_applied(applied, stream_seq)
    registry._recent = recent


def _index_entries(
    entries: list[IndexEntry],
    index: dict[bytes, IndexEntry],
    by_key_id: dict[str, IndexEntry],
    grace: dict[str, list[IndexEntry]],
) -> None:
    for entry in entries:
        index[entry.digest] = entry
        by_key_id[entry.key_id] = entry
        # keys retire in the order they were made: this is the order rotations listed them
        if entry.status == "grace":
            grace.setdefault(entry.account_id, []).append(entry)
