"""The one nats-server config template: embedded node, local cluster nodes and compose.yaml."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Var:
    """An environment variable that nats-server resolves when it loads the config."""

    name: str


Value = str | Var


def _value(value: Value) -> str:
    # json.dumps quotes and escapes paths the way the NATS config parser expects.
    return f"${value.name}" if isinstance(value, Var) else json.dumps(value)


@dataclass(frozen=True)
class ClusterConfig:
    """Where this node listens for routes and which peers it dials (itself is ignored)."""

    host: str
    port: int
    routes: tuple[str, ...]
    name: str = "keyledger"


def render_config(
    *,
    host: str,
    port: int,
    store_dir: Path | str,
    server_name: Value = "keyledger",
    cluster: ClusterConfig | None = None,
    authorization: str = "",
    monitor_port: int | None = None,
    pid_file: Path | None = None,
) -> str:
    """nats-server config for one JetStream node; acks are sent only after fsync.

    authorization: who may connect: the `accounts { ... }` block that
    keyledger.deploy.accounts renders, or an `include` of a file holding it.
    pid_file: where the server writes its pid (`keyledger operator add` signals a reload).
    """
    lines = [
        f"server_name: {_value(server_name)}",
        f"host: {json.dumps(host)}",
        f"port: {port}",
    ]
    if pid_file is not None:
        lines.append(f"pid_file: {json.dumps(str(pid_file))}")
    if monitor_port is not None:
        lines.append(f"http: {json.dumps(f'{host}:{monitor_port}')}")
    lines += [
        "jetstream {",
        f"  store_dir: {_value(str(store_dir))}",
        # Default is a 2-minute fsync: acknowledged writes can be lost on power loss.
        "  sync_interval: always",
        "}",
    ]
    if cluster is not None:
        routes = "".join(f"\n    {json.dumps(route)}" for route in cluster.routes)
        lines += [
            "cluster {",
            f"  name: {json.dumps(cluster.name)}",
            f"  listen: {json.dumps(f'{cluster.host}:{cluster.port}')}",
            f"  routes: [{routes}\n  ]",
            "}",
        ]
    text = "\n".join(lines) + "\n"
    if authorization:
        text += authorization.rstrip("\n") + "\n"
    return text
