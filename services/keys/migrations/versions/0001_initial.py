"""keys 0001: the vault, the audit projection and its tracking row."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "keys_vault",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("nonce", sa.LargeBinary(12), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_keys_vault_account_id", "keys_vault", ["account_id"])
    op.create_table(
        "keys_audit",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("stream_seq", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("key_hint", sa.String(32)),
        sa.Column("user", sa.String(128)),
    )
    op.create_table(
        "keys_tracking",
        sa.Column("projection", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("keys_tracking", "keys_audit", "keys_vault"):
        op.drop_table(table)
