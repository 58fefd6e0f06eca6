"""`keyledger operator add|list`: one NATS user per person acting through the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from contracts.connection import resolve_data_dir
from keyledger.cli.common import DataDirOpt

operator_app = typer.Typer(
    help="Operators: the people acting through the CLI, each with a NATS user of their own.",
    no_args_is_help=True,
)


def _folder(data_dir: Path | None) -> Path:
    return resolve_data_dir(data_dir, os.environ)


@operator_app.command("add")
def operator_add(
    name: Annotated[str, typer.Argument(help="lower-case letters, digits, - and _")],
    data_dir: DataDirOpt = None,
) -> None:
    """Write DATA_DIR/credentials/NAME.json (mode 0600) for a new operator; a running
    `keyledger up` reloads its NATS server so that NAME can connect at once.

    Hand the file to that person: `keyledger --operator NAME ...` (or KEYLEDGER_OPERATOR,
    or KEYLEDGER_NATS_CREDENTIALS_FILE) then acts as NAME, whose replies nobody else reads.
    """
    from keyledger.deploy.operators import OperatorError, add_operator, reload_servers

    folder = _folder(data_dir)
    try:
        add_operator(folder, name)
    except OperatorError as exc:
        typer.echo(f"error: invalid_request: {exc}", err=True)
        raise typer.Exit(2) from None
    path = folder / "credentials" / f"{name}.json"
    reloaded = reload_servers(folder)
    where = (
        f"reloaded nats-server pid {', '.join(map(str, reloaded))}"
        if reloaded
        else ("no running server in this data dir: `keyledger up` will accept it when it starts")
    )
    typer.echo(f"operator {name}: credentials in {path}; {where}")


@operator_app.command("list")
def operator_list(
    data_dir: DataDirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """The operators with credentials in the data dir."""
    from keyledger.deploy.permissions import operators

    names = operators(_folder(data_dir))
    typer.echo(json.dumps({"operators": names}) if json_out else "\n".join(names))
