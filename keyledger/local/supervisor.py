"""The `keyledger up` supervisor: starts NATS and the services, restarts what dies, stops all.

A process that dies after the start is restarted with a backoff (keyledger.local.restart); one
that keeps dying (5 times within 60 s), or any that cannot start at all, stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import nats
import nats.errors

from contracts.connection import (
    DATA_DIR_VAR,
    FILE_VAR,
    NATS_URL_FILE,
    PASSWORD_VAR,
    URL_VAR,
    USER_VAR,
    Credentials,
    Options,
    credentials_file,
    servers,
)
from keyledger.deploy import permissions
from keyledger.deploy.auditcopy import prepare_copies
from keyledger.local import children, webconsole
from keyledger.local import gateway as example_gateway
from keyledger.local.children import Child, ServiceSpec, faststream
from keyledger.local.console import death, err, report, say
from keyledger.local.nats import LocalNats, nats_options
from keyledger.local.restart import now_iso
from keyledger.local.server import PortInUse, free_port
from keyledger.local.state import remove_state, write_state

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

READY_TIMEOUT = 30.0
TICK = 0.2  # how often deaths are looked for: a restart is at most this late
CHECKPOINTED = ("keys", "notifier")  # the services that sign checkpoints of their streams
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Supervisor:
    data_dir: Path
    nats_url: str | None
    db_url: str | None
    port: int
    dev: bool
    services: Sequence[ServiceSpec]
    key_file: Path | None
    checkpoint_key_file: Path | None = None  # given to the services that checkpoint
    gateway: ServiceSpec | None = None  # --dev: the example gateway, run after the services
    gateway_url: str | None = None
    console: ServiceSpec | None = None  # the web console, run after the services (and gateway)
    console_url: str | None = None
    console_notes: list[str] = field(default_factory=list)  # --dev: demo's sign-in link
    nodes: int = 0  # > 0: a local cluster of that many nodes instead of one server
    instances: int = 1  # processes per service
    nats: LocalNats | None = None  # None with --nats-url
    # generated NATS users of the server we start, by identity; empty with --nats-url
    credentials: dict[str, Credentials] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    signals: int = 0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    started_at: str = field(default_factory=now_iso)
    written: dict[str, object] = field(default_factory=dict)  # the state file's content

    def _on_signal(self) -> None:
        self.signals += 1
        self.stopping.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    def _nats_options(self, identity: str) -> Options:
        return nats_options(self.credentials, identity)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # Handled here rather than by KeyboardInterrupt so cleanup is never cut short.
        for sig in _STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal)
        try:
            return await self._run()
        finally:
            await self._shutdown()
            for sig in _STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    async def _run(self) -> int:
        try:
            exe = faststream()
            if self.nats_url is None:
                self.nats = LocalNats.start(
                    self.data_dir, port=self.port, nodes=self.nodes, credentials=self.credentials
                )
                await self.nats.wait_ready(self._nats_options(permissions.ADMIN))
        except RuntimeError as exc:  # PortInUse included
            hint = " (choose --port, or --nats-url for a running server)"
            err(f"cannot start: {exc}{hint if isinstance(exc, PortInUse) else ''}")
            return 1
        url = self.nats.url if self.nats else str(self.nats_url)
        tmp = self.data_dir / f"{NATS_URL_FILE}.tmp"
        tmp.write_text(url + "\n")
        tmp.replace(self.data_dir / NATS_URL_FILE)  # readers never see a partial URL
        for spec in self.services:
            for instance in range(1, self.instances + 1):
                self.children.append(self._spawn(exe, spec, url, instance=instance))
                say(f"starting {spec.name}, log in {self.children[-1].log_file}")
        self._write_state()
        if not await self._wait_ready(url):
            return 0 if self.stopping.is_set() else 1
        if self.nats is not None:
            await self._prepare_audit_copies(url)
        if self.gateway and not await self._start_gateway(self.gateway, exe, url):
            return 0 if self.stopping.is_set() else 1
        if self.console and not await self._start_console(self.console, exe, url):
            return 0 if self.stopping.is_set() else 1
        if self.dev and self.console is not None and self.console_url:
            self.console_notes = await self._demo_sign_in(url, self.console)
        self._banner(url)
        while not self.stopping.is_set():
            if self.nats is not None and not self.nats.tick():
                return 1
            if not all(self._watch(child) for child in self.children):
                return 1
            self._write_state()
            await self._pause(TICK)
        return 0

    def _watch(self, child: Child) -> bool:
        """Restart a child that died once its backoff is over; False when it keeps dying."""
        history = child.history
        code = child.proc.poll()
        if history.due is None and code is not None:
            going_on = history.died(code)
            death(child.name, child.proc.pid, history, child.log_file, child.log_tail())
            return going_on
        # while nats-server restarts, a service would only fail to connect: wait for it
        if history.is_due() and (self.nats is None or self.nats.ready()):
            child.respawn()
            say(f"{child.name} restarted (pid {child.proc.pid}), restart #{history.restarts}")
        return True

    def _write_state(self) -> None:
        """The state file `keyledger health` shows, when something in it changed."""
        processes = self.nats.state() if self.nats else []
        processes += [child.state() for child in self.children]
        state = {"pid": os.getpid(), "started_at": self.started_at, "processes": processes}
        if state != self.written:
            write_state(self.data_dir, state)
            self.written = state

    async def _start_gateway(self, spec: ServiceSpec, exe: str, url: str) -> bool:
        port = free_port()
        argv = example_gateway.gateway_command(port)
        if not await self._start_http(spec, exe, url, argv, port):
            return False
        self.gateway_url = f"http://{example_gateway.HOST}:{port}"
        example_gateway.write_url(self.data_dir, self.gateway_url)
        return True

    async def _start_console(self, spec: ServiceSpec, exe: str, url: str) -> bool:
        port = free_port()
        argv = webconsole.console_command(port, spec.factory)
        if not await self._start_http(spec, exe, url, argv, port):
            return False
        self.console_url = f"http://{example_gateway.HOST}:{port}"
        webconsole.write_url(self.data_dir, self.console_url)
        return True

    async def _start_http(
        self, spec: ServiceSpec, exe: str, url: str, argv: list[str], port: int
    ) -> bool:
        """A child serving HTTP on `port` (same port on each restart), once it accepts."""
        child = self._spawn(exe, spec, url, argv=argv)
        self.children.append(child)
        say(f"starting {spec.name}, log in {child.log_file}")

        def alive() -> bool:
            return child.proc.poll() is None and not self.stopping.is_set()

        if not await example_gateway.wait_serving(port, alive, READY_TIMEOUT):
            what = f"{spec.name} not serving"
            return not self.stopping.is_set() and report(what, child.log_file, child.log_offset)
        return True

    async def _demo_sign_in(self, url: str, console: ServiceSpec) -> list[str]:
        """--dev: an account and a console user to try the console with at once."""
        creds = self.credentials.get(permissions.DEFAULT_OPERATOR)
        db, module = self._db_url(console), console.factory
        return await webconsole.demo_sign_in(module, url, creds, db, str(self.console_url))

    def _spawn(
        self,
        exe: str,
        spec: ServiceSpec,
        url: str,
        argv: list[str] | None = None,
        instance: int = 1,
    ) -> Child:
        env = dict(os.environ)
        env.pop("KEYLEDGER_ALLOW_TIME_TRAVEL", None)  # only --dev may turn it on
        env |= {
            URL_VAR: url,
            "KEYLEDGER_DB_URL": self._db_url(spec),
            DATA_DIR_VAR: str(self.data_dir),
            "PYTHONUNBUFFERED": "1",  # log tails shown on failure must be complete
        }
        if self.credentials:
            # its own identity's file, never credentials the operator's shell happens to hold
            for name in (FILE_VAR, USER_VAR, PASSWORD_VAR):
                env.pop(name, None)
            identity = spec.identity or spec.name
            env[FILE_VAR] = str(credentials_file(self.data_dir, identity))
        if self.key_file is not None:
            env["KEYLEDGER_MASTER_KEY_FILE"] = str(self.key_file)
        if self.checkpoint_key_file is not None and spec.name in CHECKPOINTED:
            env["KEYLEDGER_CHECKPOINT_KEY_FILE"] = str(self.checkpoint_key_file)
        if self.dev:
            env["KEYLEDGER_ALLOW_TIME_TRAVEL"] = "1"
        if self.nodes:
            env["KEYLEDGER_STREAM_REPLICAS"] = str(min(self.nodes, 3))
        name = f"{spec.name}-{instance}" if self.instances > 1 else spec.name
        argv = argv or [exe, "run", spec.factory, "--factory"]
        return children.spawn(spec, name, argv, env, self.data_dir / f"{name}.log")

    def _db_url(self, spec: ServiceSpec) -> str:
        return self.db_url or f"sqlite+aiosqlite:///{self.data_dir / spec.db_file}"

    def _all_alive(self, when: str) -> bool:
        """False, after showing why with a log tail, if any of our processes has exited."""
        for c in self.children:
            if (code := c.proc.poll()) is not None:
                what = f"{c.name} (pid {c.proc.pid}) exited {when} (code {code})"
                return report(what, c.log_file, c.log_offset)
        return self.nats is None or self.nats.alive(when)

    async def _wait_ready(self, url: str) -> bool:
        """Until every service answers its health subject (any reply will do)."""
        try:
            nc = await nats.connect(
                servers(url),
                connect_timeout=2,
                max_reconnect_attempts=3,
                reconnect_time_wait=0.5,
                **self._nats_options(permissions.ADMIN),
            )
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            err(f"cannot connect to NATS at {url}: {exc!r}")
            return False
        pending = list(self.children)
        deadline = time.monotonic() + READY_TIMEOUT
        try:
            while pending and not self.stopping.is_set():
                if not self._all_alive("while starting"):
                    return False
                for child in list(pending):
                    # NoResponders: not subscribed yet; Timeout: busy starting. Both: retry.
                    with contextlib.suppress(nats.errors.Error, TimeoutError):
                        await nc.request(child.spec.health_subject, b"{}", timeout=0.5)
                        pending.remove(child)
                if not pending:
                    return True
                if time.monotonic() > deadline:
                    late = pending[0]
                    what = f"{late.name} not ready after {READY_TIMEOUT:.0f} s"
                    return report(what, late.log_file, late.log_offset)
                await self._pause(0.2)
        finally:
            await nc.close()
        return False  # a signal came while starting

    async def _prepare_audit_copies(self, url: str) -> None:
        # the copies exist from the start, so a reader in any language finds them
        problem = await prepare_copies(servers(url), self._nats_options("auditor"))
        if problem:
            err(f"the auditors' copies are not made yet ({problem}); `keyledger replay` will")

    def _banner(self, url: str) -> None:
        where = self.nats.describe() if self.nats else "external server"
        # Never print a database password.
        db = re.sub(r"//([^/:@]*):[^/@]*@", r"//\1:***@", self.db_url or "")
        say(f"keyledger is up\n  NATS      {url} ({where})\n  data dir  {self.data_dir}")
        say(f"  db        {db or f'SQLite files in {self.data_dir}'}")
        for c in self.children:
            say(f"  {c.name:<9} pid {c.proc.pid}, log {c.log_file}")
        if self.gateway_url:
            say(f"  API       {self.gateway_url} (example gateway; try GET /v1/ping)")
        if self.console_url:
            say(f"  console: {self.console_url}")
        for note in self.console_notes:
            say(f"  {note}")
        say("Ctrl-C to stop")

    async def _shutdown(self) -> None:
        """Services first (SIGTERM, then SIGKILL after 10 s or a second signal), NATS last."""
        alive = [c.proc for c in self.children if c.proc.poll() is None]
        if alive or self.nats is not None:
            say("stopping (Ctrl-C again to kill)")
        await children.stop(alive, lambda: self.signals > 1)
        if self.nats is not None:
            self.nats.stop()
        (self.data_dir / NATS_URL_FILE).unlink(missing_ok=True)
        (self.data_dir / example_gateway.URL_FILE).unlink(missing_ok=True)
        webconsole.remove_url(self.data_dir)
        remove_state(self.data_dir)
