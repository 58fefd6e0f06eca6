"""`keyledger checkpoints`: the public key that signs them, and every checkpoint as JSON Lines."""

from __future__ import annotations

import os
from pathlib import Path  # typer reads the annotations at run time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from contracts import checkpoints as cp
from contracts.connection import resolve_data_dir
from contracts.envelope import canonical_json
from keyledger.audit.checkpoints import COVERS, read_checkpoints
from keyledger.cli.common import EXIT_USAGE, DataDirOpt, NatsUrlOpt, Target, call, fail

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from keyledger.client import KeyledgerClient

checkpoints_app = typer.Typer(
    help="Signed checkpoints of KEYS and NOTIFY (the CHECKPOINTS stream)."
)
PublicKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        help="file holding the checkpoints' public key (base64) [default: from the data dir]",
    ),
]


def public_key(
    given: Path | None, data_dir: Path | None, target: Target
) -> Ed25519PublicKey | None:
    """--public-key's key; else the one of the data dir's signing key; else None."""
    try:
        if given is not None:
            return cp.parse_public_key(given.read_text())
        signing = resolve_data_dir(data_dir, os.environ) / cp.KEY_FILE_NAME
        if signing.exists():
            return cp.load_private_key(signing).public_key()
    except (OSError, ValueError) as exc:
        fail(target, "invalid_public_key", str(exc), EXIT_USAGE)
    return None


@checkpoints_app.command("key")
def key(data_dir: DataDirOpt = None) -> None:
    """Print the public key (base64 of its raw 32 bytes) of the data dir's signing key."""
    target = Target(None, data_dir, json=False)
    signing = resolve_data_dir(data_dir, os.environ) / cp.KEY_FILE_NAME
    try:
        found = cp.load_private_key(signing).public_key()
    except (OSError, ValueError) as exc:
        fail(target, "no_signing_key", f"{signing}: {exc}", EXIT_USAGE)
    typer.echo(cp.public_text(found))


@checkpoints_app.command("export")
def export(
    stream: Annotated[
        str | None, typer.Option("--stream", help="KEYS or NOTIFY [default: both]")
    ] = None,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write every checkpoint body as JSON Lines (as published), read from the auditors' copy."""
    target = Target(nats_url, data_dir, json=False)
    streams = [stream] if stream else list(COVERS)

    async def bodies(client: KeyledgerClient) -> list[dict[str, Any]]:
        found = []
        for name in streams:
            found += await read_checkpoints(client.nc, name, COVERS.get(name, ""))
        return found

    for body in call(target, bodies, identity="auditor"):
        typer.echo(canonical_json(body).decode())  # the bytes as published
