"""`keyledger console user add`: make a console user and print a one-time setup link."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Annotated

import typer

from contracts.connection import resolve_data_dir
from keyledger.cli.common import EXIT_USAGE, DataDirOpt
from keyledger.local.webconsole import URL_FILE  # `keyledger up` writes it

console_app = typer.Typer(help="The web console.", no_args_is_help=True)
user_app = typer.Typer(help="People who sign in to the console.", no_args_is_help=True)
console_app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    user: Annotated[str, typer.Argument(help="the user name (as in the accounts' super-admins)")],
    email: Annotated[str, typer.Option("--email", help="the person's email address")],
    url: Annotated[
        str | None,
        typer.Option("--url", help="the console's address (default: <data dir>/console.url)"),
    ] = None,
    db_url: Annotated[
        str | None,
        typer.Option(
            "--db-url",
            envvar="KEYLEDGER_DB_URL",
            help="the console's database (default: <data dir>/console.db, as `keyledger up`)",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create USER if missing and print a setup link (one use, valid 24 hours)."""
    from keyledger.cli.migrate import _sqlite_folder, default_url
    from services.console.users import setup_link_for_new_user

    folder = resolve_data_dir(data_dir, os.environ)
    base = url or _url_file(folder / URL_FILE)
    if not base:
        typer.echo(
            f"error: no console address: pass --url, or start keyledger (no {URL_FILE} "
            f"in {folder})",
            err=True,
        )
        raise typer.Exit(EXIT_USAGE)
    database = db_url or default_url("console", folder)
    _sqlite_folder(database)  # a first run: the data dir may not exist yet
    link = asyncio.run(setup_link_for_new_user(database, user, email, base, datetime.now(UTC)))
    typer.echo(f"setup link for {user} (one use, valid 24 hours):")
    typer.echo(link)


def _url_file(path: os.PathLike[str]) -> str:
    try:
        with open(path) as found:
            return found.read().strip()
    except OSError:
        return ""
