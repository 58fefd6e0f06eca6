"""calllog 0002: on PostgreSQL, calllog_calls partitioned by day on ts_us; SQLite unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from services.calllog import days

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = """
    call_id VARCHAR(64) NOT NULL,
    account_id VARCHAR(64) NOT NULL,
    key_id VARCHAR(64) NOT NULL,
    ts_us BIGINT NOT NULL,
    method VARCHAR(16) NOT NULL,
    path VARCHAR(2048) NOT NULL,
    status SMALLINT NOT NULL,
    duration_ms FLOAT NOT NULL,
    caller_ip VARCHAR(64),
    user_agent VARCHAR(512),
    stream_seq BIGINT NOT NULL"""
_INDEXES = {
    "calllog_account_ts": "account_id, ts_us, call_id",
    "calllog_key_ts": "key_id, ts_us, call_id",
    "calllog_ts": "ts_us",
}


def _indexes() -> None:
    for name, columns in _INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON calllog_calls ({columns})")


def upgrade() -> None:
    """The existing table becomes the partition of the days it holds, in place (no row is
    copied; its indexes are adopted): retention drops it once its newest day has expired.
    Rows dated after today are moved to partitions of their own first, so that one far-off
    row does not make the old table cover the days ahead."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE SCHEMA {days.SCHEMA}")
    op.execute(f"ALTER TABLE calllog_calls SET SCHEMA {days.SCHEMA}")  # its indexes go along
    old = f"{days.SCHEMA}.calllog_calls"
    op.execute(
        f"CREATE TABLE calllog_calls ({_COLUMNS}, PRIMARY KEY (call_id, ts_us)) "
        "PARTITION BY RANGE (ts_us)"
    )
    _indexes()
    bind = op.get_bind()
    today = days.day_of(int(datetime.now(UTC).timestamp()) * 1_000_000)
    later = (today + 1) * days.DAY_US
    lowest = bind.scalar(sa.text(f"SELECT min(ts_us) FROM {old}"))
    if lowest is None:
        op.execute(f"DROP TABLE {old}")
        return
    future = bind.execute(
        sa.text(f"SELECT DISTINCT ts_us / {days.DAY_US} FROM {old} WHERE ts_us >= {later}")
    )
    taken: list[days.Span] = []
    for day in days.uncovered([int(d) for (d,) in future], taken):
        if not days.covered(day, taken):
            span = days.span_for(day, today, taken)
            for sql in days.create_sql(span):
                op.execute(sql)
            taken.append(span)
    if taken:
        op.execute(f"INSERT INTO calllog_calls SELECT * FROM {old} WHERE ts_us >= {later}")
        op.execute(f"DELETE FROM {old} WHERE ts_us >= {later}")
    span = (min(days.day_of(int(lowest)), today), today + 1)
    # the parent's key, (call_id, ts_us), in place of the old one: the one index built anew
    op.execute(
        f"ALTER TABLE {old} DROP CONSTRAINT calllog_calls_pkey, ADD PRIMARY KEY (call_id, ts_us)"
    )
    op.execute(f"ALTER TABLE {old} RENAME TO {days.name_for(span)}")
    op.execute(
        f"ALTER TABLE calllog_calls ATTACH PARTITION {days.SCHEMA}.{days.name_for(span)} "
        f"FOR VALUES FROM ({span[0] * days.DAY_US}) TO ({span[1] * days.DAY_US})"
    )


def downgrade() -> None:
    """Back to one table keyed on call_id, every row copied (of one call id stored under two
    times, the older is kept)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE calllog_calls RENAME TO calllog_calls_partitioned")
    for name in _INDEXES:
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_partitioned")
    op.execute(
        "ALTER TABLE calllog_calls_partitioned "
        "RENAME CONSTRAINT calllog_calls_pkey TO calllog_calls_partitioned_pkey"
    )
    op.execute(
        f"CREATE TABLE calllog_calls ({_COLUMNS}, "
        "CONSTRAINT calllog_calls_pkey PRIMARY KEY (call_id))"
    )
    op.execute(
        "INSERT INTO calllog_calls SELECT * FROM calllog_calls_partitioned "
        "ORDER BY ts_us ON CONFLICT (call_id) DO NOTHING"
    )
    op.execute("DROP TABLE calllog_calls_partitioned")
    op.execute(f"DROP SCHEMA {days.SCHEMA} CASCADE")
    _indexes()
