"""keys 0002: the audit log records via, the frontend a command came through."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # nullable, no backfill: events older than via carry none
    with op.batch_alter_table("keys_audit") as table:
        table.add_column(sa.Column("via_account", sa.String(128)))
        table.add_column(sa.Column("via_user", sa.String(128)))


def downgrade() -> None:
    with op.batch_alter_table("keys_audit") as table:
        table.drop_column("via_user")
        table.drop_column("via_account")
