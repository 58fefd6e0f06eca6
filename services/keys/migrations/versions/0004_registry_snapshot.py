"""keys 0004: the registry snapshot, so a replica starts from it and reads only KEYS' tail."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "keys_snapshot",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("schema", sa.Integer, nullable=False),
        sa.Column("generation", sa.String(32), nullable=False),
        sa.Column("written_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "keys_snapshot_accounts",
        sa.Column("account_id", sa.String, primary_key=True),
        sa.Column("subject_seq", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Text),
    )
    op.create_table(
        "keys_snapshot_commands",
        sa.Column("account_id", sa.String, primary_key=True),
        sa.Column("command_id", sa.String, primary_key=True),
        sa.Column("stream_seq", sa.BigInteger, nullable=False),
        sa.Column("applied", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_keys_snapshot_commands_stream_seq", "keys_snapshot_commands", ["stream_seq"]
    )


def downgrade() -> None:
    op.drop_index("ix_keys_snapshot_commands_stream_seq", "keys_snapshot_commands")
    op.drop_table("keys_snapshot_commands")
    op.drop_table("keys_snapshot_accounts")
    op.drop_table("keys_snapshot")
