"""The keys service's own tables: vault, audit projection, tracking row, registry snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from services.common.migrate import upgrade_to_head
from services.common.sql import UtcMicros
from services.keys.migrations import MIGRATIONS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

metadata = MetaData()

vault = Table(
    "keys_vault",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False, index=True),
    Column("nonce", LargeBinary(12), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
)

audit = Table(
    "keys_audit",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("sequence", Integer, primary_key=True, autoincrement=False),
    Column("stream_seq", BigInteger, nullable=False),
    Column("occurred_at", UtcMicros, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("key_id", String(64)),
    Column("key_hint", String(32)),
    Column("user", String(128)),
    Column("via_account", String(128)),  # the frontend the command came through, if any
    Column("via_user", String(128)),
)

tracking = Table(
    "keys_tracking",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

# the registry snapshot (services/keys/snapshot.py): one row says which KEYS position the
# rows cover, which snapshot schema wrote them and which generation they belong to
snapshot = Table(
    "keys_snapshot",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("schema", Integer, nullable=False),
    Column("generation", String(32), nullable=False),  # "": cleared, nothing to load
    Column("written_at", UtcMicros, nullable=False),
)

# one row per account subject: its position, and its state and keys as compact JSON (NULL
# when the subject holds no event of the account); rows never move back (subject_seq guard)
snapshot_accounts = Table(
    "keys_snapshot_accounts",
    metadata,
    # unbounded: any token after keys.events. is an account subject, even a foreign one's
    Column("account_id", String, primary_key=True),
    Column("subject_seq", BigInteger, nullable=False),
    Column("state", Text),
)

# the commands a retry may still repeat: Registry._recent with each one's stream sequence
snapshot_commands = Table(
    "keys_snapshot_commands",
    metadata,
    Column("account_id", String, primary_key=True),
    Column("command_id", String, primary_key=True),
    Column("stream_seq", BigInteger, nullable=False),
    Column("applied", Text, nullable=False),
    Index("ix_keys_snapshot_commands_stream_seq", "stream_seq"),
)


async def create_schema(engine: AsyncEngine) -> None:
    """Create or upgrade the tables with the service's Alembic history (migrations/)."""
    await upgrade_to_head(engine, MIGRATIONS)
