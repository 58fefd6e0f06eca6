"""The `keyledger` command line: run the system, manage keys, read the audit log, replay."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

from contracts.connection import resolve_data_dir
from contracts.keys import ACCOUNT_ID, event_subject
from keyledger.audit import replay as replaying
from keyledger.cli import common as cli_common
from keyledger.cli.audit import audit
from keyledger.cli.auditors import auditors_app
from keyledger.cli.calls import calls_app
from keyledger.cli.checkpoints import PublicKeyOpt, checkpoints_app, public_key
from keyledger.cli.cluster import cluster_app
from keyledger.cli.common import (
    DataDirOpt,
    JsonOpt,
    NatsUrlOpt,
    Target,
    call,
)
from keyledger.cli.console import console_app
from keyledger.cli.health import health
from keyledger.cli.keys import account_app, admin_app, key_app
from keyledger.cli.migrate import migrate
from keyledger.cli.notify import notifications_app, reminders_app
from keyledger.cli.offline import export, verify_file
from keyledger.cli.operator import operator_app
from keyledger.cli.replay import replay_events, report

# rich tracebacks with locals could print a key held in a local variable: keep them off
app = typer.Typer(
    help="keyledger: event-sourced API keys on NATS JetStream.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
contracts_app = typer.Typer(help="Export the message contracts.", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(admin_app, name="admin")
app.add_typer(key_app, name="key", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")
app.add_typer(calls_app, name="calls")
app.add_typer(cluster_app, name="cluster")
app.add_typer(notifications_app, name="notifications")
app.add_typer(reminders_app, name="reminders")
app.add_typer(operator_app, name="operator")
app.add_typer(auditors_app, name="auditors")
app.add_typer(console_app, name="console")
app.add_typer(checkpoints_app, name="checkpoints", no_args_is_help=True)
app.command()(migrate)
app.command()(health)


@app.callback()
def choose_operator(
    operator: Annotated[
        str | None,
        typer.Option(
            "--operator",
            envvar=cli_common.OPERATOR_VAR,
            help="act as this operator (credentials/NAME.json; default: cli)",
        ),
    ] = None,
) -> None:
    """keyledger: event-sourced API keys on NATS JetStream."""
    cli_common.CHOSEN.operator = operator


@app.command()
def up(
    data_dir: DataDirOpt = None,
    nats_url: Annotated[
        str | None, typer.Option("--nats-url", help="use this NATS instead of starting one")
    ] = None,
    db_url: Annotated[
        str | None, typer.Option("--db-url", help="one database URL for every service")
    ] = None,
    port: Annotated[int, typer.Option("--port", help="port for the local nats-server")] = 0,
    dev: Annotated[bool, typer.Option("--dev", help="development mode")] = False,
) -> None:
    """Run nats-server and the services in the foreground until Ctrl-C."""
    from keyledger.local.up import run_up  # imported late: other commands need none of it

    folder = resolve_data_dir(data_dir, os.environ)
    raise typer.Exit(run_up(data_dir=folder, nats_url=nats_url, db_url=db_url, port=port, dev=dev))


app.command()(audit)
app.command()(export)
app.command("verify-file")(verify_file)


@app.command()
def replay(
    account: Annotated[
        str | None, typer.Option("--account", help="print only this account's events")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="check every account's hash chain")
    ] = False,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    stream: Annotated[str, typer.Option("--stream", hidden=True)] = "KEYS",
    subject: Annotated[str, typer.Option("--subject", hidden=True)] = replaying.DEFAULT_SUBJECT,
    public_key_file: PublicKeyOpt = None,
) -> None:
    """Print the event history in stream order; --verify checks it has not been altered,
    also against the stream's signed checkpoints."""
    target = Target(nats_url, data_dir, json_out)
    signer = public_key(public_key_file, data_dir, target) if verify else None
    # read only what is printed; an id with a wildcard or a dot would widen the subject
    narrow = not verify and subject == replaying.DEFAULT_SUBJECT
    if account and narrow and re.fullmatch(ACCOUNT_ID, account):
        subject = event_subject(account)
    # as the auditor: the one identity allowed to read every stream (and nothing else)
    outcome = call(
        target,
        lambda c: replay_events(c.nc, stream, subject, account, verify, target, signer),
        identity="auditor",
    )
    report(outcome, target)  # exits 1: broken chain, 5: checkpoint mismatch, 4: foreign messages


@contracts_app.command("export")
def contracts_export(
    folder: Annotated[Path, typer.Argument(help="folder to write the schema files into")],
) -> None:
    """Write JSON Schema 2020-12 files for every message, index.json and asyncapi.json."""
    from keyledger.audit.schemas import export_schemas

    index = export_schemas(folder)
    typer.echo(f"wrote {len(index['schemas'])} schemas, index.json and asyncapi.json to {folder}")


def main() -> None:
    app()
