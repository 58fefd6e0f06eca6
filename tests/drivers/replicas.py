"""Several OS processes per service (`faststream run`, as `keyledger up` runs them) for tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nats.errors

from keyledger.local.server import log_tail, parent_death_preexec
from keyledger.local.up import SERVICES, ServiceSpec

if TYPE_CHECKING:
    from nats.aio.client import Client

REPO = Path(__file__).resolve().parents[2]
SPECS: dict[str, ServiceSpec] = {spec.name: spec for spec in SERVICES}
READY_SECONDS = 60.0  # six Python processes importing at once on two cores take a while
STOP_SECONDS = 5.0


@dataclass
class Replica:
    """One service process; `pid` is what its health reply carries."""

    spec: ServiceSpec
    proc: subprocess.Popen[bytes]
    log_file: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return f"{self.spec.name} pid {self.pid}, last lines of {self.log_file}:\n" + log_tail(
            self.log_file, 40
        )

    def kill(self) -> None:
        """SIGKILL: a crash, with no cleanup of any kind."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@dataclass
class Replicas:
    """Spawns service processes and makes sure every one of them is gone at teardown."""

    folder: Path
    children: list[Replica] = field(default_factory=list)

    def spawn(self, service: str, env: dict[str, str]) -> Replica:
        spec = SPECS[service]
        n = sum(1 for c in self.children if c.spec.name == service) + 1
        log_file = self.folder / f"{service}-{n}.log"
        # only what the test sets: a KEYLEDGER_* of the developer's shell must not leak in
        base = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")}
        with log_file.open("ab") as log:
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "faststream"), "run", spec.factory, "--factory"],
                cwd=REPO,
                env=base | env | {"PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=parent_death_preexec(),  # a killed pytest leaves no service behind
            )
        replica = Replica(spec, proc, log_file)
        self.children.append(replica)
        return replica

    def stop_all(self) -> None:
        """SIGTERM, then SIGKILL whatever is still running after a few seconds."""
        running = [c for c in self.children if c.proc.poll() is None]
        for child in running:
            child.proc.terminate()
        for child in running:
            try:
                child.proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()


async def health(nc: Client, spec: ServiceSpec, wait: float = 5.0) -> dict[str, Any]:
    """One health reply's result, from whichever replica the queue group picked."""
    reply = json.loads((await nc.request(spec.health_subject, b"{}", timeout=wait)).data)
    assert reply["ok"], reply
    return dict(reply["result"])


async def wait_serving(nc: Client, *group: Replica) -> None:
    """Until each process has answered its health subject itself (its pid in the reply).

    The health subject is a queue group, so a request reaches one replica at random:
    polling until every pid was seen is what proves that each of them serves.
    """
    pending = {r.pid: r for r in group}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_SECONDS
    while pending:
        for replica in pending.values():
            if replica.proc.poll() is not None:
                raise AssertionError(f"exited while starting: {replica.log()}")
        if loop.time() > deadline:
            raise AssertionError(
                f"not serving after {READY_SECONDS:.0f} s: " + next(iter(pending.values())).log()
            )
        spec = next(iter(pending.values())).spec
        try:
            pending.pop(int((await health(nc, spec, wait=0.5))["pid"]), None)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            await asyncio.sleep(0.05)  # nobody subscribed yet, or busy starting
