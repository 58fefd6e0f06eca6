"""Child processes for bench/verify.py: echo responder, keys service, waiting on them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from verify_report import progress

from contracts.keys import KEYS_STREAM
from keyledger.local.server import log_tail, parent_death_preexec
from services.keys.vault import new_master_key

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.aio.client import Client
    from nats.js import JetStreamContext

ROOT = Path(__file__).resolve().parent.parent
ECHO_SCRIPT = Path(__file__).resolve().parent / "verify_echo.py"
ECHO_SUBJECT = "bench.echo"
POLL_SECONDS = 0.05


class Child:
    """A subprocess of ours: own process group, SIGTERM if we die, log to a file."""

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = log.open("ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            preexec_fn=parent_death_preexec(),
            process_group=0,
        )

    def check(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(f"{self.proc.args!r} exited with {code}:\n{log_tail(self.log)}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def start_echo(url: str, size: int, tmp: Path) -> Child:
    return Child([sys.executable, str(ECHO_SCRIPT), url, str(size)], tmp / "echo.log")


def start_keys_service(url: str, tmp: Path, name: str) -> Child:
    env = dict(os.environ)
    env.update(
        KEYLEDGER_NATS_URL=url,
        KEYLEDGER_DB_URL=f"sqlite+aiosqlite:///{tmp / f'{name}.db'}",
        KEYLEDGER_MASTER_KEY=new_master_key(),
        KEYLEDGER_LOG_LEVEL=os.environ.get("BENCH_SERVICE_LOG_LEVEL", "WARNING"),
    )
    faststream = Path(sys.executable).parent / "faststream"
    argv = [str(faststream), "run", "services.keys.app:create_app", "--factory"]
    return Child(argv, tmp / f"{name}.log", env)


async def first_answer(
    nc: Client, child: Child, subject: str, payload: bytes, limit: float
) -> tuple[float, bytes]:
    """Seconds from the child's start to its first reply, polling every 50 ms."""
    deadline = time.perf_counter() + limit
    while True:
        child.check()
        try:
            msg = await nc.request(subject, payload, timeout=0.5)
            return time.perf_counter() - child.started, msg.data
        except (NoRespondersError, NatsTimeout):
            pass
        if time.perf_counter() > deadline:
            raise RuntimeError(
                f"no answer on {subject} within {limit:.0f} s:\n{log_tail(child.log)}"
            )
        await asyncio.sleep(POLL_SECONDS)


async def wait_durables_caught_up(js: JetStreamContext, limit: float) -> float | None:
    """Seconds until every durable consumer on KEYS (the audit projection) has acked all."""
    started = time.perf_counter()
    last_seq = (await js.stream_info(KEYS_STREAM.name)).state.last_seq
    while time.perf_counter() - started < limit:
        infos = await js.consumers_info(KEYS_STREAM.name)
        durables = [i for i in infos if i.config.durable_name]
        if durables and all(
            (i.ack_floor.stream_seq if i.ack_floor else 0) >= last_seq for i in durables
        ):
            return time.perf_counter() - started
        await asyncio.sleep(0.5)
    return None


async def connect(url: str, name: str) -> Client:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(repr(exc))
        if len(errors) <= 5:
            progress(f"{name}: nats error {exc!r}")

    return await nats.connect(url, name=name, error_cb=on_error, max_reconnect_attempts=3)
