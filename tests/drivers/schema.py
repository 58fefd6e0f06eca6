"""Each service's tables as its metadata and as a live database describe them, for migrations."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, DateTime, MetaData, inspect

from keyledger.cli.migrate import migration_specs
from services.calllog import store as calllog_store
from services.common.sql import UtcMicros
from services.console import store as console_store
from services.keys import store as keys_store
from services.notifier import store as notifier_store

METADATA = {
    "keys": keys_store.metadata,
    "notifier": notifier_store.metadata,
    "calllog": calllog_store.metadata,
    "console": console_store.metadata,
}
SPECS = migration_specs()
Shape = dict[str, dict[str, Any]]


def metadata_shape(metadata: MetaData, dialect: str = "sqlite") -> Shape:
    """A table may name another primary key on a dialect (info "<dialect>_primary_key"):
    calllog_calls, partitioned on PostgreSQL, holds ts_us in it there."""
    return {
        table.name: {
            "columns": [(c.name, c.nullable) for c in table.columns],
            "primary_key": table.info.get(
                f"{dialect}_primary_key", [c.name for c in table.primary_key.columns]
            ),
            "indexes": sorted(
                (str(i.name), tuple(c.name for c in i.columns), bool(i.unique))
                for i in table.indexes
            ),
        }
        for table in metadata.tables.values()
    }


def database_shape(conn: Connection) -> Shape:
    """Every table but the version tables, as the database itself reports it."""
    found = inspect(conn)
    return {
        name: {
            "columns": [(c["name"], c["nullable"]) for c in found.get_columns(name)],
            "primary_key": found.get_pk_constraint(name)["constrained_columns"],
            "indexes": sorted(
                (str(i["name"]), tuple(i["column_names"]), bool(i["unique"]))
                for i in found.get_indexes(name)
            ),
        }
        for name in found.get_table_names()
        if not name.endswith("_schema_version")
    }


def autogenerate_diff(conn: Connection, metadata: MetaData) -> list[Any]:
    """What `alembic revision --autogenerate` would write, types included, own tables only."""

    def own(name: str | None, kind: str, _parent: Any) -> bool:
        return kind != "table" or name in metadata.tables

    migration = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": own})
    return list(compare_metadata(migration, metadata))


def before_micros(metadata: MetaData) -> MetaData:
    """The tables as they were before 0003: every UtcMicros column a DateTime(timezone=True)."""
    old = MetaData()
    for table in metadata.tables.values():
        for column in table.to_metadata(old).columns:
            if isinstance(column.type, UtcMicros):
                column.type = DateTime(timezone=True)
    return old
