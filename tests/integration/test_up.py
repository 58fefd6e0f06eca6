"""Tests for the `keyledger up` supervisor, run in a subprocess with a fake service."""

import asyncio
import base64
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import pytest

from keyledger.deploy.permissions import IDENTITIES
from keyledger.local.server import NatsServer
from keyledger.local.state import read_state
from keyledger.local.up import ServiceSpec, run_up

pytestmark = pytest.mark.nats

REPO = Path(__file__).resolve().parents[2]
FAKE_FACTORY = "tests.drivers.fake_service:create_app"
SCRIPT = """
import sys
from pathlib import Path
from keyledger.local.up import ServiceSpec, run_up
from keyledger.local.state import read_state
# admin: no least-privileged identity may serve the fake's subject
fake = ServiceSpec("fake", sys.argv[2], "fake.query.health", "fake.db", identity="admin")
data_dir, nats_url = Path(sys.argv[1]), sys.argv[3] or None
sys.exit(run_up(data_dir=data_dir, nats_url=nats_url, db_url=None, dev=True, services=[fake]))
"""


def _alive(pid: int) -> bool:
    """True if pid runs and is not a zombie (an unreaped orphan counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _wait_gone(pids: set[int], timeout: float = 5.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := {p for p in pids if _alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    out: Path
    err: Path

    def wait_banner(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while "Ctrl-C to stop" not in (text := self.out.read_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no banner; stdout:\n{text}\nstderr:\n{self.err.read_text()}")
            time.sleep(0.05)
        return text


def _start_up(
    tmp_path: Path, factory: str = FAKE_FACTORY, nats_url: str = "", own_group: bool = False
) -> Up:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")}
    out, err = tmp_path / "up.out", tmp_path / "up.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(tmp_path / "data"), factory, nats_url],
            cwd=REPO,  # so `faststream run` finds the tests package, as it would services/
            env=env | {"PYTHONUNBUFFERED": "1"},
            stdout=stdout,
            stderr=stderr,
            # Like a shell job: the terminal's Ctrl-C goes to this whole group.
            process_group=0 if own_group else None,
        )
    return Up(proc, tmp_path / "data", out, err)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    running = _start_up(tmp_path)
    yield running
    if running.proc.poll() is None:
        running.proc.terminate()
        try:
            running.proc.wait(15)
        except subprocess.TimeoutExpired:
            running.proc.kill()


async def test_up_serves_and_writes_its_state(up: Up) -> None:
    banner = up.wait_banner()
    data = up.data_dir
    url = (data / "nats.url").read_text().strip()
    assert url in banner
    assert str(data / "fake.log") in banner
    assert not url.endswith(":4222")
    assert (data.stat().st_mode & 0o777) == 0o700
    key_file = data / "master.key"
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert len(base64.urlsafe_b64decode(key_file.read_text())) == 32
    signing = data / "checkpoint-signing.key"  # beside the vault key, never the same
    assert (signing.stat().st_mode & 0o777) == 0o600
    assert len(base64.b64decode(signing.read_text())) == 32
    assert signing.read_text() != key_file.read_text()
    creds = data / "credentials"
    assert (creds.stat().st_mode & 0o777) == 0o700
    assert sorted(p.name for p in creds.iterdir()) == sorted(f"{i}.json" for i in IDENTITIES)
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in creds.iterdir())
    admin = json.loads((creds / "admin.json").read_text())
    assert admin["password"] not in banner + up.err.read_text()
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=1)
    nc = await nats.connect(url, user=admin["user"], password=admin["password"])
    try:
        reply = json.loads((await nc.request("fake.query.health", b"{}", timeout=2)).data)
    finally:
        await nc.close()
    assert reply["env"] == {
        "KEYLEDGER_NATS_URL": url,
        "KEYLEDGER_DB_URL": f"sqlite+aiosqlite:///{data / 'fake.db'}",
        "KEYLEDGER_DATA_DIR": str(data),
        "KEYLEDGER_MASTER_KEY_FILE": str(key_file),
        "KEYLEDGER_ALLOW_TIME_TRAVEL": "1",
        "KEYLEDGER_NATS_CREDENTIALS_FILE": str(creds / "admin.json"),
    }


def test_second_up_on_same_dir_exits_1(up: Up, capsys: pytest.CaptureFixture[str]) -> None:
    up.wait_banner()
    assert run_up(data_dir=up.data_dir, nats_url=None, db_url=None) == 1
    assert f"keyledger is already running in {up.data_dir}" in capsys.readouterr().err
    assert up.proc.poll() is None  # the first one is untouched


def test_sigterm_stops_everything_cleanly(up: Up) -> None:
    up.wait_banner()
    children = _children(up.proc.pid)
    banner_pids = {int(p) for p in re.findall(r"pid (\d+)", up.out.read_text())}
    assert banner_pids == children
    assert len(children) == 2  # nats-server + fake
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(15) == 0
    assert not _wait_gone(children, timeout=1)
    assert not (up.data_dir / "nats.url").exists()
    assert "shut down gracefully" in (up.data_dir / "fake.log").read_text()
    assert "Server Exiting" in (up.data_dir / "nats-server.log").read_text()
    with (up.data_dir / "up.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released


def test_ctrl_c_in_a_terminal_stops_services_then_nats(tmp_path: Path) -> None:
    up = _start_up(tmp_path, own_group=True)
    try:
        up.wait_banner()
        children = _children(up.proc.pid)
        os.killpg(up.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert up.proc.wait(15) == 0
    finally:
        if up.proc.poll() is None:
            up.proc.kill()
    assert not _wait_gone(children, timeout=1)
    assert "shut down gracefully" in (up.data_dir / "fake.log").read_text()
    # nats-server never saw the SIGINT: it was stopped by the supervisor, after the service.
    nats_log = (up.data_dir / "nats-server.log").read_text()
    assert 'Trapped "terminated" signal' in nats_log
    assert "interrupt" not in nats_log


async def test_up_with_external_nats_leaves_it_running(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    up = _start_up(tmp_path, nats_url=nats_server.url)
    banner = up.wait_banner()
    assert f"{nats_server.url} (external server)" in banner
    assert (up.data_dir / "nats.url").read_text().strip() == nats_server.url
    assert not (up.data_dir / "jetstream").exists()
    up.proc.terminate()
    assert up.proc.wait(15) == 0
    assert nats_server.is_running()
    assert not (up.data_dir / "nats.url").exists()


STALE = "Traceback (most recent call last):\nRuntimeError: stale-from-an-earlier-run\n"


def _fake_pid(up: Up, after: int = 0) -> int:
    """The fake's pid: from the banner, or the newest `fake restarted (pid N)` line."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = up.out.read_text()
        found = re.findall(r"fake +pid (\d+)|fake restarted \(pid (\d+)", text)
        pids = [int(banner or restarted) for banner, restarted in found]
        if pids and pids[-1] != after:
            return pids[-1]
        time.sleep(0.05)
    pytest.fail(f"no new fake pid; stdout:\n{up.out.read_text()}\nstderr:\n{up.err.read_text()}")


async def _fake_answers(up: Up, within: float = 10.0) -> int:
    """The pid of the fake that answers its health subject, once one does."""
    admin = json.loads((up.data_dir / "credentials" / "admin.json").read_text())
    url = (up.data_dir / "nats.url").read_text().strip()
    deadline = time.monotonic() + within
    while True:
        try:
            nc = await nats.connect(
                url, user=admin["user"], password=admin["password"], allow_reconnect=False
            )
            try:
                reply = await nc.request("fake.query.health", b"{}", timeout=1)
                return int(json.loads(reply.data)["pid"])
            finally:
                await nc.close()
        except (OSError, nats.errors.Error):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def _state(up: Up) -> dict[str, dict[str, object]]:
    state = read_state(up.data_dir)
    assert state is not None
    return {p["name"]: p for p in state["processes"]}


@pytest.fixture
def stale_up(tmp_path: Path) -> Iterator[Up]:
    """`up` whose fake.log already ends with an earlier run's traceback."""
    (tmp_path / "data").mkdir(mode=0o700)
    (tmp_path / "data" / "fake.log").write_text(STALE)
    running = _start_up(tmp_path)
    yield running
    if running.proc.poll() is None:
        running.proc.terminate()
        running.proc.wait(15)


async def test_a_killed_child_is_restarted_with_this_runs_log(stale_up: Up) -> None:
    up = stale_up
    up.wait_banner()
    first = _fake_pid(up)
    os.kill(first, signal.SIGKILL)
    second = _fake_pid(up, after=first)
    assert await _fake_answers(up) == second
    err = up.err.read_text()
    assert f"fake (pid {first}) killed by SIGKILL; restarting it in 0.5 s" in err
    assert "stale-from-an-earlier-run" not in err  # only this run's log is shown
    assert "fake restarted" in up.out.read_text()
    fake = _state(up)["fake"]
    assert (fake["pid"], fake["restarts"], fake["last_exit"]) == (second, 1, "killed by SIGKILL")
    assert up.proc.poll() is None
    # backoff: the next death in a row waits twice as long
    os.kill(second, signal.SIGKILL)
    _fake_pid(up, after=second)
    assert f"fake (pid {second}) killed by SIGKILL; restarting it in 1 s" in up.err.read_text()


async def test_a_killed_nats_server_is_restarted_on_the_same_port_and_store(up: Up) -> None:
    up.wait_banner()
    url = (up.data_dir / "nats.url").read_text().strip()
    fake = await _fake_answers(up)
    nats_pid = _state(up)["nats-server"]["pid"]
    assert isinstance(nats_pid, int)
    os.kill(nats_pid, signal.SIGKILL)
    started = time.monotonic()
    assert await _fake_answers(up) == fake  # the same fake: it reconnected
    assert time.monotonic() - started < 10
    assert (up.data_dir / "nats.url").read_text().strip() == url
    assert f"nats-server (pid {nats_pid}) killed by SIGKILL" in up.err.read_text()
    state = _state(up)["nats-server"]
    assert state["restarts"] == 1
    assert state["pid"] not in (None, nats_pid)
    assert up.proc.poll() is None


def test_a_child_that_keeps_dying_stops_everything(stale_up: Up) -> None:
    up = stale_up
    up.wait_banner()
    children = _children(up.proc.pid)
    pid = 0
    for _ in range(5):
        pid = _fake_pid(up, after=pid)
        children |= {pid}
        os.kill(pid, signal.SIGKILL)
    assert up.proc.wait(15) == 1
    err = up.err.read_text()
    assert f"fake (pid {pid}) killed by SIGKILL; it died 5 times within 60 s: giving up" in err
    assert "stale-from-an-earlier-run" not in err
    assert not _wait_gone(children | _children(up.proc.pid), timeout=5)
    assert not (up.data_dir / "nats.url").exists()
    assert read_state(up.data_dir) is None


def test_supervisor_death_takes_children_down(up: Up) -> None:
    up.wait_banner()
    children = _children(up.proc.pid)
    up.proc.kill()  # no chance to clean up: PR_SET_PDEATHSIG must do it
    up.proc.wait()
    # nats-server goes at the same moment, so a child's closing flush may wait out its
    # time-out (seen: over 10 s on a loaded machine); what matters is that none is left
    assert not _wait_gone(children, timeout=40)


def test_service_failing_to_start_stops_everything(tmp_path: Path) -> None:
    up = _start_up(tmp_path, factory="tests.drivers.fake_service:no_such_factory")
    assert up.proc.wait(20) == 1
    err = up.err.read_text()
    assert "while starting" in err
    assert "no_such_factory" in err  # the service's log tail is shown
    nats_pid = int(re.findall(r"^\[(\d+)\]", (up.data_dir / "nats-server.log").read_text())[0])
    assert not _alive(nats_pid)
    assert not (up.data_dir / "nats.url").exists()


def test_nats_port_in_use_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEYLEDGER_MASTER_KEY", raising=False)
    monkeypatch.delenv("KEYLEDGER_MASTER_KEY_FILE", raising=False)
    data = tmp_path / "data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert run_up(data_dir=data, nats_url=None, db_url=None, port=port, services=[]) == 1
    assert "already in use" in capsys.readouterr().err
    assert not (data / "nats.url").exists()
    assert (data / "master.key").stat().st_mode & 0o777 == 0o600
    # The lock went with the failed run: a new one may start.
    with (data / "up.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_service_spec_table_has_keys() -> None:
    from keyledger.local.up import SERVICES

    assert SERVICES[0] == ServiceSpec(
        "keys", "services.keys.app:create_app", "keys.query.health", "keys.db"
    )
