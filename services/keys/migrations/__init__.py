"""The keys service's migration spec: its Alembic history, version table and baseline tables."""

from __future__ import annotations

from pathlib import Path

from services.common.migrate import MigrationSpec

MIGRATIONS = MigrationSpec(
    name="keys",
    folder=Path(__file__).parent,
    version_table="keys_schema_version",
    # what metadata.create_all made before the migrations existed
    pre_alembic_tables=frozenset({"keys_vault", "keys_audit", "keys_tracking"}),
)
