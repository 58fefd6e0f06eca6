"""`keyledger cluster up`: a local N-node JetStream cluster plus the services, for development."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from contracts.connection import resolve_data_dir
from keyledger.cli.common import DataDirOpt

cluster_app = typer.Typer(help="Run keyledger on a local NATS cluster.", no_args_is_help=True)


@cluster_app.command("up")
def cluster_up(
    nodes: Annotated[int, typer.Option("--nodes", min=1, help="nats-server nodes")] = 3,
    replicas: Annotated[
        int, typer.Option("--replicas", min=1, help="processes of each service")
    ] = 1,
    data_dir: DataDirOpt = None,
    db_url: Annotated[
        str | None, typer.Option("--db-url", help="one database URL for every service")
    ] = None,
    dev: Annotated[bool, typer.Option("--dev", help="development mode")] = False,
) -> None:
    """Start N nats-servers routed as one JetStream cluster and the services, until Ctrl-C.

    Streams get min(N, 3) replicas; every node keeps its own store under DATA_DIR/cluster.
    """
    from keyledger.local.up import run_up  # imported late: other commands need none of it

    folder = resolve_data_dir(data_dir, os.environ)
    code = run_up(
        data_dir=folder, nats_url=None, db_url=db_url, dev=dev, nodes=nodes, instances=replicas
    )
    raise typer.Exit(code)


@cluster_app.command("config")
def cluster_config() -> None:
    """Print the nats-server config compose.yaml mounts (deploy/nats.conf) from the template."""
    from keyledger.deploy.compose import nats_config

    typer.echo(nats_config(), nl=False)


@cluster_app.command("env")
def cluster_env() -> None:
    """Print a .env for compose.yaml with random NATS passwords, a database password and a
    master key: `keyledger cluster env > .env && chmod 600 .env`."""
    from keyledger.deploy.compose import env_file

    typer.echo(env_file(), nl=False)
