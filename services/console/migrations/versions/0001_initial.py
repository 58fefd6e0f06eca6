"""console 0001: people, sessions, setup tokens and failed sign-ins."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("user", sa.String(128), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(256)),
        sa.Column("totp_secret", sa.String(64)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(128)),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at", sa.BigInteger, nullable=False),
        sa.Column("sudo_until", sa.BigInteger),
    )
    op.create_table(
        "console_setup_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used", sa.Boolean, nullable=False),
    )
    op.create_index("ix_console_setup_tokens_user", "console_setup_tokens", ["user"])
    op.create_table(
        "console_signin_failures",
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "console_signin_failures",
        "console_setup_tokens",
        "console_sessions",
        "console_users",
    ):
        op.drop_table(table)
