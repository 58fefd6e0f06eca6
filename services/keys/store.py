"""The keys service's own tables: the vault, the audit projection and its tracking row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
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


async def create_schema(engine: AsyncEngine) -> None:
    """Create or upgrade the tables with the service's Alembic history (migrations/)."""
    await upgrade_to_head(engine, MIGRATIONS)
