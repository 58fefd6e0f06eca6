"""The `keyledger up` supervisor: a local nats-server plus each service as a child process."""

from __future__ import annotations

import asyncio
import base64
import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING

from contracts import calllog, checkpoints, keys, notifier
from contracts.connection import CredentialsError
from keyledger.deploy import permissions
from keyledger.local import webconsole
from keyledger.local.children import ServiceSpec
from keyledger.local.console import err, say
from keyledger.local.gateway import GATEWAY_FACTORY
from keyledger.local.supervisor import Supervisor

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["GATEWAY", "SERVICES", "ServiceSpec", "run_up"]

# Adding a service is one line here.
SERVICES: list[ServiceSpec] = [
    ServiceSpec("keys", "services.keys.app:create_app", keys.query_subject("health"), "keys.db"),
    ServiceSpec(
        "notifier",
        "services.notifier.app:create_app",
        notifier.query_subject("health"),
        "notifier.db",
    ),
    ServiceSpec(
        "calllog", "services.calllog.app:create_app", calllog.query_subject("health"), "calllog.db"
    ),
]
# --dev also runs the example API gateway (uvicorn, not faststream; no health subject)
GATEWAY = ServiceSpec("gateway", GATEWAY_FACTORY, "", "gateway.db")


def _lock(data_dir: Path) -> int | None:
    """An exclusive flock on data_dir/up.lock, or None if another `up` holds it."""
    fd = os.open(data_dir / "up.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())  # informational: who holds the lock
    return fd


def _ensure_master_key(data_dir: Path) -> Path | None:
    """The master key file the children should use; None when the env gives the key."""
    if os.environ.get("KEYLEDGER_MASTER_KEY"):
        return None
    if os.environ.get("KEYLEDGER_MASTER_KEY_FILE"):
        return Path(os.environ["KEYLEDGER_MASTER_KEY_FILE"])
    path = data_dir / "master.key"
    try:
        # O_EXCL + 0600 at creation: the key is never readable by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            err(f"warning: {path} is readable by other users; chmod 600 it")
        return path
    try:
        os.write(fd, base64.urlsafe_b64encode(os.urandom(32)))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _ensure_checkpoint_key(data_dir: Path) -> Path | None:
    """The checkpoint signing key file for keys and the notifier (never the vault's master
    key); None when the environment already names one."""
    if os.environ.get("KEYLEDGER_CHECKPOINT_KEY") or os.environ.get(
        "KEYLEDGER_CHECKPOINT_KEY_FILE"
    ):
        return None
    path = data_dir / checkpoints.KEY_FILE_NAME
    if not checkpoints.generate_key_file(path) and path.stat().st_mode & 0o077:
        err(f"warning: {path} is readable by other users; chmod 600 it")
    return path


def default_console(*, real: bool) -> ServiceSpec | None:
    """services.console with the real services (a checkout without it runs the rest); none
    with stand-in services, whose console a test names itself."""
    if not real:
        return None
    if not webconsole.installed():
        say(f"console: not started ({webconsole.MODULE} is not installed)")
        return None
    return webconsole.CONSOLE


def run_up(
    *,
    data_dir: Path,
    nats_url: str | None,
    db_url: str | None,
    port: int = 0,
    dev: bool = False,
    services: Sequence[ServiceSpec] | None = None,
    nodes: int = 0,
    instances: int = 1,
    console: ServiceSpec | None = None,
) -> int:
    """Run NATS (unless nats_url) and the services, restarting what dies, until a signal
    (exit 0) or until one keeps dying (exit 1); see keyledger.local.supervisor.

    console: the web console to run (its factory: the module run with `python -m`); None:
    services.console with the real services, no console with others."""
    data_dir = data_dir.resolve()  # children and nats.url readers get absolute paths
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_fd = _lock(data_dir)
    if lock_fd is None:
        err(f"keyledger is already running in {data_dir}")
        return 1
    try:
        key_file = _ensure_master_key(data_dir)
        try:
            # one NATS user per identity on a server we start; an external server has its own
            credentials = permissions.ensure_credentials(data_dir) if nats_url is None else {}
        except CredentialsError as exc:
            err(f"cannot start: {exc}")
            return 1
        chosen = SERVICES if services is None else services
        supervisor = Supervisor(data_dir, nats_url, db_url, port, dev, chosen, key_file)
        # the gateway needs the real services
        supervisor.gateway = GATEWAY if dev and services is None else None
        supervisor.console = console or default_console(real=services is None)
        supervisor.nodes, supervisor.instances = nodes, instances
        supervisor.credentials = credentials
        supervisor.checkpoint_key_file = _ensure_checkpoint_key(data_dir)
        return asyncio.run(supervisor.run())
    finally:
        os.close(lock_fd)  # closing the descriptor releases the flock
