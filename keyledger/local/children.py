"""The services `keyledger up` runs: each a child process in its own group, with a log file."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from keyledger.local.restart import Restarts
from keyledger.local.server import log_size, log_tail, parent_death_preexec

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class ServiceSpec:
    """One service run as `faststream run FACTORY --factory`."""

    name: str
    factory: str  # "package.module:create_app"
    health_subject: str  # any reply on it means the service is serving
    db_file: str  # SQLite file inside data_dir when no --db-url is given
    identity: str = ""  # the NATS user it connects as (keyledger.deploy.permissions); "": its name


@dataclass
class Child:
    """One supervised process: how to start it again, and its current run."""

    spec: ServiceSpec
    name: str  # spec.name, with the instance number when there are several
    argv: list[str]
    env: dict[str, str]
    log_file: Path
    proc: subprocess.Popen[bytes]
    log_offset: int  # where this run's part of the appended log starts
    history: Restarts = field(default_factory=Restarts)

    def respawn(self) -> None:
        self.proc, self.log_offset = _popen(self.argv, self.env, self.log_file)
        self.history.restarted()

    def state(self) -> dict[str, object]:
        """For the state file `keyledger health` shows."""
        running = self.history.due is None and self.proc.poll() is None
        return {
            "name": self.name,
            "pid": self.proc.pid if running else None,
            "state": "running" if running else "restarting",
            "log": str(self.log_file),
        } | self.history.state()

    def log_tail(self) -> str:
        """The end of what this run logged: never an earlier run's traceback."""
        return log_tail(self.log_file, since=self.log_offset)


def faststream() -> str:
    beside = Path(sys.executable).parent / "faststream"
    found = str(beside) if beside.is_file() else shutil.which("faststream")
    if found is None:
        raise RuntimeError("faststream not found beside the Python interpreter nor on PATH")
    return found


def spawn(
    spec: ServiceSpec, name: str, argv: list[str], env: dict[str, str], log_file: Path
) -> Child:
    """Start argv with its output appended to log_file."""
    proc, offset = _popen(argv, env, log_file)
    return Child(spec, name, argv, env, log_file, proc, offset)


def _popen(
    argv: list[str], env: dict[str, str], log_file: Path
) -> tuple[subprocess.Popen[bytes], int]:
    offset = log_size(log_file)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            # Own process group: a terminal Ctrl-C reaches only the supervisor, which
            # stops the services first and nats-server last; were the supervisor to die,
            # PR_SET_PDEATHSIG sends them SIGTERM.
            process_group=0,
            preexec_fn=parent_death_preexec(),
        )
    return proc, offset


async def stop(alive: Sequence[subprocess.Popen[bytes]], hurry: Callable[[], bool]) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT s or as soon as hurry() (a second signal)."""
    for proc in alive:
        proc.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(p.poll() is None for p in alive) and time.monotonic() < deadline:
        if hurry():
            break
        await asyncio.sleep(0.05)
    for proc in alive:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
