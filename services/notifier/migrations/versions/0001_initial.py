"""notifier 0001: the KEYS projection, reminder claims and the sidebar inbox."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notifier_keys",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(32), nullable=False),
        sa.Column("in_use_since", UTC_TIME, nullable=False),
        sa.Column("last_creator", sa.String(128), nullable=False),
        sa.Column("source_event_id", sa.String(64), nullable=False),
        sa.Column("next_months", sa.Integer, nullable=False),
        sa.Column("next_due_at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_notifier_keys_next_due_at", "notifier_keys", ["next_due_at"])
    op.create_table(
        "notifier_people",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(128), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("admin", sa.Boolean, nullable=False),
    )
    op.create_table(
        "notifier_tracking",
        sa.Column("projection", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "notifier_reminders",
        sa.Column("reminder_id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("key_hint", sa.String(32), nullable=False),
        sa.Column("in_use_since", UTC_TIME, nullable=False),
        sa.Column("source_event_id", sa.String(64), nullable=False),
        sa.Column("milestone", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("due_at", UTC_TIME, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTC_TIME, nullable=False),
        sa.Column("lease_owner", sa.String(36)),
        sa.Column("lease_until", UTC_TIME),
        sa.Column("last_error", sa.String(500)),
        sa.Column("claimed_at", UTC_TIME, nullable=False),
        sa.Column("delivered_at", UTC_TIME),
        sa.Column("published_at", UTC_TIME),
    )
    op.create_index(
        "ix_notifier_reminders_work", "notifier_reminders", ["state", "next_attempt_at"]
    )
    op.create_index(
        "ix_notifier_reminders_publish", "notifier_reminders", ["state", "published_at"]
    )
    op.create_index("ix_notifier_reminders_account", "notifier_reminders", ["account_id", "key_id"])
    op.create_table(
        "notifier_inbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("key_hint", sa.String(32), nullable=False),
        sa.Column("milestone", sa.Integer, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("read_at", UTC_TIME),
    )
    op.create_index("ix_notifier_inbox_user", "notifier_inbox", ["user", "created_at"])


def downgrade() -> None:
    for table in ("inbox", "reminders", "tracking", "people", "keys"):
        op.drop_table(f"notifier_{table}")
