"""The notifier's own tables: the KEYS projection, reminder claims and the sidebar inbox."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from services.common.migrate import upgrade_to_head
from services.common.sql import UtcMicros, make_engine, use_wal
from services.notifier.migrations import MIGRATIONS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

metadata = MetaData()
# every time column: BIGINT microseconds since the epoch, UTC (services/common/sql.py)
UTC_TIME = UtcMicros

# the active key of each account; next_due_at is what the sweep's range scan reads
keys = Table(
    "notifier_keys",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("hint", String(32), nullable=False),
    Column("in_use_since", UTC_TIME, nullable=False),
    Column("last_creator", String(128), nullable=False),
    Column("source_event_id", String(64), nullable=False),
    Column("next_months", Integer, nullable=False),
    Column("next_due_at", UTC_TIME, nullable=False, index=True),
)

# everyone an account's events named, with the email they gave; admin is current
people = Table(
    "notifier_people",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("user", String(128), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("admin", Boolean, nullable=False),
)

# each account's last event applied: the next one must continue its hash chain
heads = Table(
    "notifier_heads",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("hash", Text, nullable=False),  # whatever the event says, as the keys service takes it
)

tracking = Table(
    "notifier_tracking",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

# one row per (key, milestone, channel, recipient): the claim that makes delivery happen once
reminders = Table(
    "notifier_reminders",
    metadata,
    Column("reminder_id", String(36), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("key_hint", String(32), nullable=False),
    Column("in_use_since", UTC_TIME, nullable=False),
    Column("source_event_id", String(64), nullable=False),
    Column("milestone", Integer, nullable=False),
    Column("channel", String(8), nullable=False),
    Column("recipient", String(128), nullable=False),
    Column("email", String(320)),
    Column("due_at", UTC_TIME, nullable=False),
    Column("state", String(12), nullable=False),  # claimed | delivered | failed | cancelled
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTC_TIME, nullable=False),
    Column("lease_owner", String(36)),
    Column("lease_until", UTC_TIME),
    Column("last_error", String(500)),
    Column("claimed_at", UTC_TIME, nullable=False),
    Column("delivered_at", UTC_TIME),
    Column("published_at", UTC_TIME),
    Index("ix_notifier_reminders_work", "state", "next_attempt_at"),
    Index("ix_notifier_reminders_publish", "state", "published_at"),
    Index("ix_notifier_reminders_account", "account_id", "key_id"),
)

inbox = Table(
    "notifier_inbox",
    metadata,
    Column("id", String(36), primary_key=True),  # the reminder's id
    Column("user", String(128), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("key_hint", String(32), nullable=False),
    Column("milestone", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    Column("read_at", UTC_TIME),
    Index("ix_notifier_inbox_user", "user", "created_at"),
)


def notifier_engine(url: str) -> AsyncEngine:
    """make_engine, plus SQLite set up for several notifier processes on one file."""
    engine = make_engine(url)
    use_wal(engine, begin_immediate=True)
    return engine


async def create_schema(engine: AsyncEngine) -> None:
    """Create or upgrade the tables with the service's Alembic history (migrations/)."""
    await upgrade_to_head(engine, MIGRATIONS)
