"""keys 0003: the audit log's occurred_at as BIGINT microseconds since the epoch, UTC."""

from __future__ import annotations

from services.common.micros_migration import datetimes_to_micros, micros_to_datetimes

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    datetimes_to_micros("keys_audit", ["occurred_at"])


def downgrade() -> None:
    micros_to_datetimes("keys_audit", ["occurred_at"])
