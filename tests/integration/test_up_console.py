"""`keyledger up` runs the web console as a supervised child: its command, env, URL file, the
--dev sign-in line, its restart; with a stand-in console, and with the real one once present."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from keyledger.local.webconsole import installed
from tests.drivers.up_process import up_dev

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.nats

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
from pathlib import Path
from keyledger.local.up import ServiceSpec, run_up
fake = ServiceSpec("fake", "tests.drivers.fake_service:create_app", "fake.query.health",
                   "fake.db", identity="admin")
console = ServiceSpec("console", "tests.drivers.fake_console", "", "console.db",
                      identity="console")
sys.exit(run_up(data_dir=Path(sys.argv[1]), nats_url=None, db_url=None, dev=True,
                services=[fake], console=console))
"""
URL = re.compile(r"^  console: (http://127\.0\.0\.1:\d+)$", re.MULTILINE)


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    out: Path

    def banner(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while "Ctrl-C to stop" not in (text := self.out.read_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no banner:\n{text}")
            time.sleep(0.05)
        return text

    def console(self) -> dict[str, Any]:
        url = (self.data_dir / "console.url").read_text().strip()
        return dict(httpx.get(url, timeout=5).json())


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")}
    out = tmp_path / "up.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(tmp_path / "data")],
            cwd=REPO,  # so `python -m tests.drivers.fake_console` finds the tests package
            env=env | {"PYTHONUNBUFFERED": "1"},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Up(proc, tmp_path / "data", out)
    yield running
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_console_runs_on_a_free_loopback_port_as_its_own_operator(up: Up) -> None:
    banner = up.banner()
    data = up.data_dir
    url = (data / "console.url").read_text().strip()
    assert URL.findall(banner) == [url]
    seen = up.console()
    assert seen["argv"] == ["--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1]]
    assert seen["env"] == {
        "KEYLEDGER_NATS_URL": (data / "nats.url").read_text().strip(),
        "KEYLEDGER_DB_URL": f"sqlite+aiosqlite:///{data / 'console.db'}",
        "KEYLEDGER_DATA_DIR": str(data),
        "KEYLEDGER_NATS_CREDENTIALS_FILE": str(data / "credentials" / "console.json"),
    }
    assert json.loads((data / "credentials" / "console.json").read_text())["user"] == "console"
    assert str(data / "console.log") in banner


def test_dev_prints_demos_sign_in_link_and_says_why_there_is_no_demo_account(up: Up) -> None:
    banner = up.banner()
    url = (up.data_dir / "console.url").read_text().strip()
    link = f"{url}/setup/token-for-demo-demo@example.com-console.db"
    assert f"  console: sign in as demo: {link}\n" in banner
    # the stand-in services have no keys service to open the account with
    assert "  console: no demo account (no service answers keys.cmd.open_account" in banner


def test_a_killed_console_is_restarted_on_the_same_port(up: Up) -> None:
    up.banner()
    first = up.console()["pid"]
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while "console restarted" not in up.out.read_text():
        assert time.monotonic() < deadline, up.out.read_text()
        time.sleep(0.1)
    while True:
        try:
            second = up.console()["pid"]
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert second != first


def test_stopping_removes_the_console_url(up: Up) -> None:
    up.banner()
    assert (up.data_dir / "console.url").exists()
    up.proc.terminate()
    assert up.proc.wait(20) == 0
    assert not (up.data_dir / "console.url").exists()


@pytest.mark.skipif(not installed(), reason="services.console is not on this branch yet")
def test_up_dev_serves_the_real_console_and_a_demo_sign_in(tmp_path: Path) -> None:
    folder, out = tmp_path / "kl", tmp_path / "up.out"
    with up_dev(folder, out) as proc:
        banner = out.read_text()
        url = (folder / "console.url").read_text().strip()
        assert URL.findall(banner) == [url]
        assert f"  console: sign in as demo: {url}/setup/" in banner
        signin = httpx.get(f"{url}/signin", timeout=5)
        assert signin.status_code == 200
    assert proc.returncode == 0, out.read_text()
    assert not (folder / "console.url").exists()
