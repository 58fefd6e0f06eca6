"""notifier 0002: each account's chain head, so the KEYS projection applies only the next event."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Empty: the projection's rows cannot be given heads without reading KEYS. This build
    # tracks the projection under a new name (services/notifier/projection.py), so it finds
    # itself at 0, empties notifier_keys and notifier_people in its first batch and rebuilds
    # them, heads included, from the stream. The 0001 row `notifier-keys` is left alone for
    # the notifiers of the previous release that run on during a rolling upgrade.
    op.create_table(
        "notifier_heads",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notifier_heads")
