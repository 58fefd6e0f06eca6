"""The calllog service's migration spec: its Alembic history, version table and baseline tables."""

from __future__ import annotations

from pathlib import Path

from services.common.migrate import MigrationSpec

MIGRATIONS = MigrationSpec(
    name="calllog",
    folder=Path(__file__).parent,
    version_table="calllog_schema_version",
    # what metadata.create_all made before the migrations existed
    pre_alembic_tables=frozenset({"calllog_calls", "calllog_tracking"}),
)
