"""The calllog service's own tables: one row per call, and the projection's tracking row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
)

from contracts.calllog import MAX_PATH, MAX_USER_AGENT, RETENTION_SECONDS
from services.calllog import partitions
from services.calllog.migrations import MIGRATIONS
from services.common.migrate import upgrade_to_head

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

metadata = MetaData()

calls = Table(
    "calllog_calls",
    metadata,
    Column("call_id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    # microseconds since the epoch, UTC: exact ordering and the same on SQLite and PostgreSQL;
    # the representation of every store's times (UtcMicros in services/common/sql.py), kept a
    # plain BigInteger because the projection and the listing bind the ints themselves
    Column("ts_us", BigInteger, nullable=False),
    Column("method", String(16), nullable=False),
    Column("path", String(MAX_PATH), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("caller_ip", String(64)),
    Column("user_agent", String(MAX_USER_AGENT)),
    Column("stream_seq", BigInteger, nullable=False),
    # newest first for an account or a key, with call_id as the keyset tie-breaker
    Index("calllog_account_ts", "account_id", "ts_us", "call_id"),
    Index("calllog_key_ts", "key_id", "ts_us", "call_id"),
    Index("calllog_ts", "ts_us"),  # retention deletes the oldest rows first
)

# The call's unique key. PostgreSQL partitions the table by day on ts_us (migration 0002,
# partitions.py), and a partitioned table's unique keys must hold the partition key. The
# same call id always comes with the same ts: a gateway builds a record once and retries
# those bytes, and JetStream drops a copy within the 2-minute duplicate window by its
# Nats-Msg-Id. A producer re-dating a call id later gets a second row on PostgreSQL (the
# first only on SQLite): no more than inventing a new call id would give it.
CALL_KEY = {"postgresql": ["call_id", "ts_us"], "sqlite": ["call_id"]}
calls.info["postgresql_primary_key"] = CALL_KEY["postgresql"]

tracking = Table(
    "calllog_tracking",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)


async def create_schema(engine: AsyncEngine) -> None:
    """Create or upgrade the tables with the service's Alembic history (migrations/); on
    PostgreSQL, make the day partitions of the window and the days ahead (partitions.py)."""
    await upgrade_to_head(engine, MIGRATIONS)
    await partitions.prepare(engine, datetime.now(UTC), RETENTION_SECONDS)
