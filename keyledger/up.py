"""The `keyledger up` supervisor: a local nats-server plus each service as a child process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors

from contracts.natsurl import servers
from keyledger import natsauth, up_gateway
from keyledger.natscluster import NatsCluster
from keyledger.natsserver import NatsServer, PortInUse, free_port, log_tail, parent_death_preexec
from services.common.natsauth import (
    FILE_VAR,
    PASSWORD_VAR,
    USER_VAR,
    Credentials,
    CredentialsError,
    Options,
    env_credentials,
    options,
)

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class ServiceSpec:
    """One service run as `faststream run FACTORY --factory`."""

    name: str
    factory: str  # "package.module:create_app"
    health_subject: str  # any reply on it means the service is serving
    db_file: str  # SQLite file inside data_dir when no --db-url is given
    identity: str = ""  # the NATS user it connects as (keyledger.natsauth); "": its name


# Adding a service is one line here.
SERVICES: list[ServiceSpec] = [
    ServiceSpec("keys", "services.keys.app:create_app", "keys.query.health", "keys.db"),
    ServiceSpec(
        "notifier", "services.notifier.app:create_app", "notify.query.health", "notifier.db"
    ),
    ServiceSpec("calllog", "services.calllog.app:create_app", "calls.query.health", "calllog.db"),
]
# --dev also runs the example API gateway (uvicorn, not faststream; no health subject)
GATEWAY = ServiceSpec("gateway", up_gateway.GATEWAY_FACTORY, "", "gateway.db")


def _say(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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
            _err(f"warning: {path} is readable by other users; chmod 600 it")
        return path
    try:
        os.write(fd, base64.urlsafe_b64encode(os.urandom(32)))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _report(what: str, log_file: Path) -> bool:
    _err(f"{what}; last lines of {log_file}:\n{log_tail(log_file)}")
    return False


def _faststream() -> str:
    beside = Path(sys.executable).parent / "faststream"
    found = str(beside) if beside.is_file() else shutil.which("faststream")
    if found is None:
        raise RuntimeError("faststream not found beside the Python interpreter nor on PATH")
    return found


@dataclass
class _Child:
    spec: ServiceSpec
    proc: subprocess.Popen[bytes]
    log_file: Path


@dataclass
class _Supervisor:
    data_dir: Path
    nats_url: str | None
    db_url: str | None
    port: int
    dev: bool
    services: Sequence[ServiceSpec]
    key_file: Path | None
    gateway: bool = False
    gateway_url: str | None = None
    nodes: int = 0  # > 0: a local cluster of that many nodes instead of one server
    instances: int = 1  # processes per service
    server: NatsServer | None = None
    cluster: NatsCluster | None = None
    nodes_down: set[int] = field(default_factory=set)  # pids already reported
    # generated NATS users of the server we start, by identity; empty with --nats-url
    credentials: dict[str, Credentials] = field(default_factory=dict)
    children: list[_Child] = field(default_factory=list)
    signals: int = 0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def _on_signal(self) -> None:
        self.signals += 1
        self.stopping.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    def _authorization(self) -> str:
        passwords = {identity: found.password for identity, found in self.credentials.items()}
        return natsauth.render_authorization(passwords)

    def _nats_options(self, identity: str) -> Options:
        """How `identity` connects: its generated user, else the environment's (--nats-url)."""
        if self.credentials:
            return options(self.credentials.get(identity))
        return options(env_credentials(os.environ))

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
            exe = _faststream()
            if self.nats_url is None and self.nodes:
                self.cluster = NatsCluster.start(
                    self.data_dir / "cluster",
                    nodes=self.nodes,
                    die_with_parent=True,
                    authorization=self._authorization(),
                )
                _say(f"waiting for the {self.nodes}-node cluster to elect a JetStream leader")
                await self.cluster.wait_ready(**self._nats_options(natsauth.ADMIN))
            elif self.nats_url is None:
                self.server = NatsServer.start(
                    self.data_dir / "jetstream",
                    port=self.port,
                    log_file=self.data_dir / "nats-server.log",
                    die_with_parent=True,
                    authorization=self._authorization(),
                )
        except RuntimeError as exc:  # PortInUse included
            hint = " (choose --port, or --nats-url for a running server)"
            _err(f"cannot start: {exc}{hint if isinstance(exc, PortInUse) else ''}")
            return 1
        url = self.cluster.url if self.cluster else self.server.url if self.server else ""
        url = url or str(self.nats_url)
        tmp = self.data_dir / "nats.url.tmp"
        tmp.write_text(url + "\n")
        tmp.replace(self.data_dir / "nats.url")  # readers never see a partial URL
        for spec in self.services:
            for instance in range(1, self.instances + 1):
                self.children.append(self._spawn(exe, spec, url, instance=instance))
                _say(f"starting {spec.name}, log in {self.children[-1].log_file}")
        if not await self._wait_ready(url):
            return 0 if self.stopping.is_set() else 1
        if self.gateway and not await self._start_gateway(exe, url):
            return 0 if self.stopping.is_set() else 1
        self._banner(url)
        while not self.stopping.is_set():
            if not self._all_alive("unexpectedly"):
                return 1
            await self._pause(0.5)
        return 0

    async def _start_gateway(self, exe: str, url: str) -> bool:
        port = free_port()
        child = self._spawn(exe, GATEWAY, url, argv=up_gateway.gateway_command(port))
        self.children.append(child)
        _say(f"starting gateway, log in {child.log_file}")

        def alive() -> bool:
            return child.proc.poll() is None and not self.stopping.is_set()

        if not await up_gateway.wait_serving(port, alive, READY_TIMEOUT):
            return not self.stopping.is_set() and _report("gateway not serving", child.log_file)
        self.gateway_url = f"http://{up_gateway.HOST}:{port}"
        up_gateway.write_url(self.data_dir, self.gateway_url)
        return True

    def _spawn(
        self,
        exe: str,
        spec: ServiceSpec,
        url: str,
        argv: list[str] | None = None,
        instance: int = 1,
    ) -> _Child:
        env = dict(os.environ)
        env.pop("KEYLEDGER_ALLOW_TIME_TRAVEL", None)  # only --dev may turn it on
        env |= {
            "KEYLEDGER_NATS_URL": url,
            "KEYLEDGER_DB_URL": self.db_url
            or f"sqlite+aiosqlite:///{self.data_dir / spec.db_file}",
            "KEYLEDGER_DATA_DIR": str(self.data_dir),
            "PYTHONUNBUFFERED": "1",  # log tails shown on failure must be complete
        }
        if self.credentials:
            # its own identity's file, never credentials the operator's shell happens to hold
            for name in (FILE_VAR, USER_VAR, PASSWORD_VAR):
                env.pop(name, None)
            identity = spec.identity or spec.name
            env[FILE_VAR] = str(natsauth.credentials_file(self.data_dir, identity))
        if self.key_file is not None:
            env["KEYLEDGER_MASTER_KEY_FILE"] = str(self.key_file)
        if self.dev:
            env["KEYLEDGER_ALLOW_TIME_TRAVEL"] = "1"
        if self.nodes:
            env["KEYLEDGER_STREAM_REPLICAS"] = str(min(self.nodes, 3))
        suffix = f"-{instance}" if self.instances > 1 else ""
        log_file = self.data_dir / f"{spec.name}{suffix}.log"
        with log_file.open("ab") as log:
            proc = subprocess.Popen(
                argv or [exe, "run", spec.factory, "--factory"],
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
        return _Child(spec, proc, log_file)

    def _all_alive(self, when: str) -> bool:
        """False, after showing why with a log tail, if any of our processes has exited."""
        for c in self.children:
            if (code := c.proc.poll()) is not None:
                return _report(
                    f"{c.spec.name} (pid {c.proc.pid}) exited {when} (code {code})", c.log_file
                )
        nodes = self.cluster.nodes if self.cluster else [self.server] if self.server else []
        down = [node for node in nodes if not node.is_running()]
        fresh = [node for node in down if node.pid not in self.nodes_down]
        self.nodes_down.update(node.pid for node in fresh)
        if self.cluster and len(down) * 2 < len(nodes):
            # a cluster keeps serving while a majority of its nodes runs
            for node in fresh:
                _err(
                    f"nats-server {node.server_name} (pid {node.pid}) exited {when}; the "
                    f"cluster goes on with {len(nodes) - len(down)} of {len(nodes)} nodes"
                )
            return True
        if down:
            node = down[0]
            return _report(
                f"nats-server {node.server_name} (pid {node.pid}) exited {when}", node.log_file
            )
        return True

    async def _wait_ready(self, url: str) -> bool:
        """Until every service answers its health subject (any reply will do)."""
        try:
            nc = await nats.connect(
                servers(url),
                connect_timeout=2,
                max_reconnect_attempts=3,
                reconnect_time_wait=0.5,
                **self._nats_options(natsauth.ADMIN),
            )
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            _err(f"cannot connect to NATS at {url}: {exc!r}")
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
                    what = f"{pending[0].spec.name} not ready after {READY_TIMEOUT:.0f} s"
                    return _report(what, pending[0].log_file)
                await self._pause(0.2)
        finally:
            await nc.close()
        return False  # a signal came while starting

    def _banner(self, url: str) -> None:
        s = self.server
        where = f"nats-server pid {s.pid}, log {s.log_file}" if s else "external server"
        if self.cluster:
            where = f"{len(self.cluster.nodes)}-node cluster, logs in {self.data_dir / 'cluster'}"
        # Never print a database password.
        db = re.sub(r"//([^/:@]*):[^/@]*@", r"//\1:***@", self.db_url or "")
        _say(f"keyledger is up\n  NATS      {url} ({where})\n  data dir  {self.data_dir}")
        _say(f"  db        {db or f'SQLite files in {self.data_dir}'}")
        for c in self.children:
            _say(f"  {c.spec.name:<9} pid {c.proc.pid}, log {c.log_file}")
        if self.gateway_url:
            _say(f"  API       {self.gateway_url} (example gateway; try GET /v1/ping)")
        _say("Ctrl-C to stop")

    async def _shutdown(self) -> None:
        """Services first (SIGTERM, then SIGKILL after 10 s or a second signal), NATS last."""
        alive = [c.proc for c in self.children if c.proc.poll() is None]
        if alive or self.server is not None or self.cluster is not None:
            _say("stopping (Ctrl-C again to kill)")
        for proc in alive:
            proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(p.poll() is None for p in alive) and time.monotonic() < deadline:
            if self.signals > 1:
                break
            await asyncio.sleep(0.05)
        for proc in alive:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.server is not None:
            self.server.stop()
        if self.cluster is not None:
            self.cluster.stop()
        (self.data_dir / "nats.url").unlink(missing_ok=True)
        (self.data_dir / up_gateway.URL_FILE).unlink(missing_ok=True)


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
) -> int:
    """Run NATS (unless nats_url) and the services until a signal; returns the exit code."""
    data_dir = data_dir.resolve()  # children and nats.url readers get absolute paths
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_fd = _lock(data_dir)
    if lock_fd is None:
        _err(f"keyledger is already running in {data_dir}")
        return 1
    try:
        key_file = _ensure_master_key(data_dir)
        try:
            # one NATS user per identity on a server we start; an external server has its own
            credentials = natsauth.ensure_credentials(data_dir) if nats_url is None else {}
        except CredentialsError as exc:
            _err(f"cannot start: {exc}")
            return 1
        chosen = SERVICES if services is None else services
        supervisor = _Supervisor(data_dir, nats_url, db_url, port, dev, chosen, key_file)
        supervisor.gateway = dev and services is None  # it needs the real services
        supervisor.nodes, supervisor.instances = nodes, instances
        supervisor.credentials = credentials
        return asyncio.run(supervisor.run())
    finally:
        os.close(lock_fd)  # closing the descriptor releases the flock
