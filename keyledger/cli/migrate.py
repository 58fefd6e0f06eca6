"""`keyledger migrate`: bring each service's database schema to this build's head."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keyledger.cli.common import EXIT_REFUSED, DataDirOpt

if TYPE_CHECKING:
    from services.common.migrate import MigrationSpec


class Which(StrEnum):
    keys = "keys"
    notifier = "notifier"
    calllog = "calllog"
    console = "console"
    all = "all"


def migrate(
    service: Annotated[Which, typer.Option("--service", help="whose schema")] = Which.all,
    db_url: Annotated[
        str | None,
        typer.Option(
            "--db-url",
            envvar="KEYLEDGER_DB_URL",
            help="database URL (default: <data dir>/<service>.db, as `keyledger up` uses)",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="only compare with head; exit 1 if behind")
    ] = False,
) -> None:
    """Create or upgrade the services' tables (Alembic; services also do it at start)."""
    # imported here: SQLAlchemy and Alembic would double every other command's start-up time
    from services.common.migrate import SchemaTooNew

    specs = migration_specs()
    chosen = list(specs) if service is Which.all else [service.value]
    work = _check if check else _upgrade
    failed = False
    for name in chosen:
        url = db_url or default_url(name, data_dir)
        try:
            line, ok = asyncio.run(work(specs[name], url))
            typer.echo(f"{name}: {line}")
        except SchemaTooNew as exc:
            typer.echo(f"{name}: error: {exc}", err=True)
            ok = False
        failed = failed or not ok
    if failed:
        raise typer.Exit(EXIT_REFUSED)


def migration_specs() -> dict[str, MigrationSpec]:
    """Each service's own migration spec by name, in the order `keyledger migrate` runs them."""
    from services.calllog.migrations import MIGRATIONS as calllog
    from services.console.migrations import MIGRATIONS as console
    from services.keys.migrations import MIGRATIONS as keys
    from services.notifier.migrations import MIGRATIONS as notifier

    return {spec.name: spec for spec in (keys, notifier, calllog, console)}


def default_url(service: str, data_dir: Path | None) -> str:
    """The service's own default, or its SQLite file in --data-dir like `keyledger up`."""
    from pydantic_settings import BaseSettings
    from sqlalchemy.engine import make_url

    from services.calllog.settings import CallLogSettings
    from services.console.settings import ConsoleSettings
    from services.keys.settings import KeysSettings
    from services.notifier.settings import NotifierSettings

    settings: dict[str, type[BaseSettings]] = {
        "keys": KeysSettings,
        "notifier": NotifierSettings,
        "calllog": CallLogSettings,
        "console": ConsoleSettings,
    }
    default = str(settings[service].model_fields["db_url"].default)
    if data_dir is None:
        return default
    return f"sqlite+aiosqlite:///{data_dir / Path(make_url(default).database or '').name}"


async def _upgrade(spec: MigrationSpec, url: str) -> tuple[str, bool]:
    from services.common.migrate import upgrade_to_head
    from services.common.sql import make_engine

    _sqlite_folder(url)
    engine = make_engine(url)
    try:
        done = await upgrade_to_head(engine, spec)
    finally:
        await engine.dispose()
    if done.before == done.after:
        return f"at {done.after} (head), nothing to do", True
    return f"migrated from {done.before or 'empty'} to {done.after}", True


async def _check(spec: MigrationSpec, url: str) -> tuple[str, bool]:
    from services.common.migrate import current_revision, head_revision, refuse_unknown
    from services.common.sql import make_engine

    head = head_revision(spec)
    current = None
    if not _missing_sqlite_file(url):  # a check must not create the file
        engine = make_engine(url)
        try:
            current = await current_revision(engine, spec)
        finally:
            await engine.dispose()
    refuse_unknown(spec, current)
    if current == head:
        return f"at {current} (head)", True
    return f"at {current or 'empty'}, head {head}: behind (run `keyledger migrate`)", False


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _sqlite_folder(url: str) -> None:
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _missing_sqlite_file(url: str) -> bool:
    path = _sqlite_file(url)
    return path is not None and not path.exists()
