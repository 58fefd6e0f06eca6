"""What compose.yaml's deployment needs from the template: the nats config and its secrets."""

from __future__ import annotations

import base64
import os
import secrets

from contracts.checkpoints import new_key_text
from keyledger.deploy.accounts import render_accounts
from keyledger.deploy.config import ClusterConfig, Var, render_config
from keyledger.deploy.permissions import IDENTITIES

NODES = ("nats-1", "nats-2", "nats-3")
CLIENT_PORT, ROUTE_PORT, MONITOR_PORT = 4222, 6222, 8222
CONFIG_FILE = "deploy/nats.conf"  # compose.yaml mounts it into every node
SERVER_NAME_VAR = "NATS_SERVER_NAME"


def password_var(identity: str) -> str:
    return f"NATS_PASSWORD_{identity.upper()}"


def nats_config() -> str:
    """One config for every node: the node's name and the passwords come from its env."""
    return render_config(
        host="0.0.0.0",
        port=CLIENT_PORT,
        store_dir="/data/jetstream",
        server_name=Var(SERVER_NAME_VAR),
        cluster=ClusterConfig(
            host="0.0.0.0",
            port=ROUTE_PORT,
            routes=tuple(f"nats-route://{node}:{ROUTE_PORT}" for node in NODES),
        ),
        authorization=render_accounts({i: Var(password_var(i)) for i in IDENTITIES}),
        monitor_port=MONITOR_PORT,
    )


def env_file() -> str:
    """A fresh .env for compose.yaml: every password, the master key and the checkpoint
    signing key (a key of its own, never the master key), random."""
    lines = [
        "# keyledger compose secrets; keep this file private (chmod 600)",
        f"KEYLEDGER_MASTER_KEY={base64.urlsafe_b64encode(os.urandom(32)).decode()}",
        f"KEYLEDGER_CHECKPOINT_KEY={new_key_text()}",
        f"POSTGRES_PASSWORD={secrets.token_urlsafe(24)}",
    ]
    lines += [f"{password_var(i)}={secrets.token_urlsafe(32)}" for i in IDENTITIES]
    return "\n".join(lines) + "\n"
