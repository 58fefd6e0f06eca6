"""The console's migration spec: its Alembic history, version table and baseline tables."""

from __future__ import annotations

from pathlib import Path

from services.common.migrate import MigrationSpec

MIGRATIONS = MigrationSpec(
    name="console",
    folder=Path(__file__).parent,
    version_table="console_schema_version",
    # the console never ran without Alembic: tables no database holds, so none is stamped
    pre_alembic_tables=frozenset({"console_users", "console_sessions", "console_setup_tokens"}),
)
