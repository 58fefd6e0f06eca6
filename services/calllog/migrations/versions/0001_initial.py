"""calllog 0001: one row per call, its query indexes, and the projection's tracking row."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # lengths written out, not imported: a migration must not change when contracts/ does
    op.create_table(
        "calllog_calls",
        sa.Column("call_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("ts_us", sa.BigInteger, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.String(2048), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("caller_ip", sa.String(64)),
        sa.Column("user_agent", sa.String(512)),
        sa.Column("stream_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("calllog_account_ts", "calllog_calls", ["account_id", "ts_us", "call_id"])
    op.create_index("calllog_key_ts", "calllog_calls", ["key_id", "ts_us", "call_id"])
    op.create_index("calllog_ts", "calllog_calls", ["ts_us"])
    op.create_table(
        "calllog_tracking",
        sa.Column("projection", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("calllog_tracking")
    op.drop_table("calllog_calls")
