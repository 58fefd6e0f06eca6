"""The registry snapshot's writer: what changed since the last write, with the KEYS position."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from services.common.sql import insert_ignore, upsert_newer
from services.keys.registry import RECENT_COMMANDS
from services.keys.snapshot_load import NAME
from services.keys.snapshot_rows import SCHEMA, encode_account, encode_applied
from services.keys.store import snapshot, snapshot_accounts, snapshot_commands

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from services.keys.registry import Registry

log = logging.getLogger("keyledger.keys")


@dataclass(frozen=True)
class Policy:
    """When to write: after `every_events` KEYS messages, or `every_seconds` after a change."""

    every_seconds: float = 5.0
    every_events: int = 10_000


class SnapshotWriter:
    """Writes the registry's changes to the snapshot tables, in one transaction each time.

    Every replica folds the same deterministic state, so any of them may write: a row moves
    only forward (its subject_seq), the position only up. A replica's writes cover the KEYS
    sequences from where it started (the position it loaded, or all when it replayed) to
    its follower's position, so together they cover the stream up to the stored position.
    The position is the follower's, not the registry's last_seq: a replica applies its own
    appends before its follower has read what precedes them. A generation that is not the
    one it built on (the rows were cleared, or rewritten by another build) makes it write
    all of its registry once.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        registry: Registry,
        position: Callable[[], int],
        policy: Policy | None = None,
    ) -> None:
        self._engine, self._registry, self._position = engine, registry, position
        self._policy = policy or Policy()
        self.generation = ""  # the generation of the rows this replica built on
        self.covered = 0  # KEYS position up to which this replica's writes are stored
        self._keys_seen = 0  # how many of the registry's keys _keys_of has placed
        self._keys_of: dict[str, list[str]] = {}  # account -> its key ids, oldest first
        self._since = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._refused = False

    def loaded(self, generation: str, position: int) -> None:
        """The registry was restored from this snapshot: write only what follows it."""
        self.generation, self.covered = generation, position

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="keys-snapshot")

    async def stop(self) -> None:
        """Stop polling (a write under way finishes) and write what is left, so the next
        start has the least to read."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._position() > self.covered:
            await self._write_logged()

    async def _run(self) -> None:
        every = self._policy.every_seconds
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), min(1.0, every))
                return
            behind = self._position() - self.covered
            waited = time.monotonic() - self._since
            if behind >= self._policy.every_events or (waited >= every and behind > 0):
                await self._write_logged()
            elif waited >= every:
                # nothing new here; a snapshot cleared under us is still rewritten soon
                self._since = time.monotonic()
                if await self._stale():
                    await self._write_logged()

    async def _write_logged(self) -> None:
        self._since = time.monotonic()
        try:
            await self.write()
        except Exception:  # the next write covers this one's changes too
            log.exception("keys: registry snapshot not written; retried shortly")

    async def _stale(self) -> bool:
        async with self._engine.connect() as conn:
            meta = (await conn.execute(select(snapshot).where(snapshot.c.name == NAME))).first()
        return meta is None or (meta.generation, meta.schema) != (self.generation, SCHEMA)

    async def write(self) -> int | None:
        """Store the changes since the last write; the position stored, or None if another
        build's newer snapshot schema owns the tables."""
        async with self._engine.begin() as conn:
            # a write first: it takes SQLite's write lock at once, and the row lock on
            # PostgreSQL, so replicas writing at the same moment take turns
            await conn.execute(
                insert_ignore(conn, snapshot, ["name"]),
                {
                    "name": NAME,
                    "position": 0,
                    "schema": SCHEMA,
                    "generation": "",
                    "written_at": _now(),
                },
            )
            meta = (
                await conn.execute(
                    select(snapshot).where(snapshot.c.name == NAME).with_for_update()
                )
            ).one()
            if meta.schema > SCHEMA:
                if not self._refused:
                    log.warning(
                        "keys: snapshot schema %d is newer than %d: not writing",
                        meta.schema,
                        SCHEMA,
                    )
                self._refused = True
                return None
            fresh = not meta.generation or meta.schema < SCHEMA
            if fresh:  # cleared, never written, or in an older form: start it anew
                await conn.execute(delete(snapshot_accounts))
                await conn.execute(delete(snapshot_commands))
            whole = fresh or meta.generation != self.generation
            # from here to the first await: one consistent view of the registry
            position = self._position()
            accounts, commands = self._changes(0 if whole else self.covered)
            await self._store(conn, accounts, commands)
            stored = position if fresh else max(int(meta.position), position)
            generation = uuid.uuid4().hex if fresh else meta.generation
            await conn.execute(
                update(snapshot)
                .where(snapshot.c.name == NAME)
                .values(position=stored, schema=SCHEMA, generation=generation, written_at=_now())
            )
            await conn.execute(
                delete(snapshot_commands).where(
                    snapshot_commands.c.stream_seq <= stored - RECENT_COMMANDS
                )
            )
        self.generation, self.covered = generation, position
        return stored

    def _changes(self, since: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Rows for every account subject and remembered command newer than `since`."""
        registry = self._registry
        by_key_id = registry._by_key_id
        self._place_new_keys()
        accounts = registry.accounts
        keys_of = self._keys_of
        rows = [
            {
                "account_id": account_id,
                "subject_seq": seq,
                "state": encode_account(
                    accounts.get(account_id),
                    [by_key_id[k] for k in keys_of.get(account_id, ())],
                ),
            }
            for account_id, seq in registry.subject_seq.items()
            if seq > since
        ]
        commands = [
            {
                "account_id": account_id,
                "command_id": command_id,
                "stream_seq": done.stream_seq,
                "applied": encode_applied(done),
            }
            for (account_id, command_id), done in registry._recent.items()
            if done.stream_seq > since
        ]
        return rows, commands

    def _place_new_keys(self) -> None:
        # keys are only ever added to the index, so the new ones are its newest entries
        by_key_id = self._registry._by_key_id
        for entry in islice(by_key_id.values(), self._keys_seen, None):
            owned = self._keys_of.setdefault(entry.account_id, [])
            if entry.key_id not in owned:
                owned.append(entry.key_id)
        self._keys_seen = len(by_key_id)

    async def _store(
        self, conn: AsyncConnection, accounts: list[dict[str, Any]], commands: list[dict[str, Any]]
    ) -> None:
        if accounts:
            await conn.execute(upsert_newer(conn, snapshot_accounts, "subject_seq"), accounts)
        if commands:
            await conn.execute(upsert_newer(conn, snapshot_commands, "stream_seq"), commands)


def _now() -> datetime:
    return datetime.now(UTC)
