"""Operators: people and the web console acting through FRONTENDS, one NATS user each."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from keyledger.deploy import permissions
from keyledger.local.nats import current_authorization
from keyledger.local.server import ACCOUNTS_FILE, PID_FILE, write_private

if TYPE_CHECKING:
    from contracts.connection import Credentials


class OperatorError(ValueError):
    """A name that cannot be an operator, or one that exists already."""


def add_operator(data_dir: Path, name: str) -> Credentials:
    """Write <data_dir>/credentials/<name>.json (0600, never overwritten) for a new user."""
    if not permissions.is_operator(name) or name in permissions.BUILT_IN_OPERATORS:
        raise OperatorError(
            f"{name!r} cannot be an operator: use 1-32 lower-case letters, digits, - or _, "
            f"starting with a letter, and no service identity ({', '.join(permissions.IDENTITIES)})"
        )
    try:
        return permissions.make_credentials(data_dir, name)
    except FileExistsError:
        raise OperatorError(f"operator {name!r} exists already") from None


def _running(pid_file: Path) -> int | None:
    """The pid of the nats-server that wrote pid_file, if it still runs (a recycled pid
    belonging to another program is not signalled)."""
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"nats-server" in command else None


def reload_servers(data_dir: Path) -> list[int]:
    """Re-render the accounts file of every server `keyledger up` runs in data_dir and ask
    each to reload it (SIGHUP): the new operator can connect at once. Returns their pids."""
    signalled: dict[int, tuple[Path | None, int]] = {}
    for accounts in sorted(data_dir.glob(f"**/{ACCOUNTS_FILE}")):
        write_private(accounts, current_authorization(data_dir))
        pid = _running(accounts.parent / PID_FILE)
        if pid is not None:
            log = _log_of(pid)
            signalled[pid] = (log, log.stat().st_size if log else 0)
            os.kill(pid, signal.SIGHUP)
    for log, offset in signalled.values():
        if log is not None:
            _wait_reloaded(log, offset)
    return list(signalled)


def _log_of(pid: int) -> Path | None:
    """The file nats-server logs to: `keyledger up` points its stdout there."""
    try:
        path = Path(os.readlink(f"/proc/{pid}/fd/1"))
    except OSError:
        return None
    return path if path.is_file() else None


def _wait_reloaded(log: Path, offset: int, within: float = 10.0) -> None:
    """Until the server logged the end of its reload: a client that connects while the
    accounts are being reloaded can be closed by the server ("Problem registering with
    account"), so `operator add` returns only once the new user can connect cleanly."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with log.open("rb") as found:
            found.seek(offset)
            if b"Reloaded server configuration" in found.read():
                return
        time.sleep(0.05)
