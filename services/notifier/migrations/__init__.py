"""The notifier service's migration spec: its Alembic history, version table and baseline tables."""

from __future__ import annotations

from pathlib import Path

from services.common.migrate import MigrationSpec

MIGRATIONS = MigrationSpec(
    name="notifier",
    folder=Path(__file__).parent,
    version_table="notifier_schema_version",
    # what metadata.create_all made before the migrations existed
    pre_alembic_tables=frozenset(
        {
            "notifier_keys",
            "notifier_people",
            "notifier_tracking",
            "notifier_reminders",
            "notifier_inbox",
        }
    ),
)
