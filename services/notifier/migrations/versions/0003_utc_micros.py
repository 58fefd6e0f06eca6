"""notifier 0003: every time column as BIGINT microseconds since the epoch, UTC."""

from __future__ import annotations

from services.common.micros_migration import datetimes_to_micros, micros_to_datetimes

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

TIME_COLUMNS = {
    "notifier_keys": ["in_use_since", "next_due_at"],
    "notifier_reminders": [
        "in_use_since",
        "due_at",
        "next_attempt_at",
        "lease_until",
        "claimed_at",
        "delivered_at",
        "published_at",
    ],
    "notifier_inbox": ["created_at", "read_at"],
}


def upgrade() -> None:
    for table, columns in TIME_COLUMNS.items():
        datetimes_to_micros(table, columns)


def downgrade() -> None:
    for table, columns in TIME_COLUMNS.items():
        micros_to_datetimes(table, columns)
