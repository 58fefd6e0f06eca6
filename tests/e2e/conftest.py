"""The e2e layer: a real `keyledger up --dev` and, for the browser tests, the system's chromium.

Playwright's own browser download is not used: the tests drive Debian's `chromium` package
at /usr/bin/chromium. Without it the browser tests skip, saying why; with
KEYLEDGER_REQUIRE_BROWSER=1 (set by .ci/run) they fail instead, so CI never passes by
skipping them.
"""

from __future__ import annotations

import os
import re
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.drivers.up_process import ENTRY_POINT, up_dev

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser

pytestmark = pytest.mark.nats

CHROMIUM = Path("/usr/bin/chromium")
SETUP_LINK = re.compile(r"console: sign in as demo: (\S+/setup/\S+)")
PASSWORD = "correct horse battery staple"


@dataclass
class Up:
    """One running `keyledger up --dev`: where it keeps its files and what it printed."""

    data_dir: Path
    out: Path

    @property
    def console(self) -> str:
        return (self.data_dir / "console.url").read_text().strip()

    @property
    def gateway(self) -> str:
        return (self.data_dir / "gateway.url").read_text().strip()

    @property
    def demo_setup_link(self) -> str:
        found = SETUP_LINK.search(self.out.read_text())
        assert found, self.out.read_text()
        return found.group(1)

    def cli(self, *args: str) -> str:
        """Run `keyledger ARGS` against this data dir, as the README shows; its stdout."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")}
        done = subprocess.run(
            [str(ENTRY_POINT), *args],
            env=env | {"KEYLEDGER_DATA_DIR": str(self.data_dir)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"keyledger {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def setup_link(self, user: str) -> str:
        """A new console user's one-time setup link (`keyledger console user add`)."""
        printed = self.cli("console", "user", "add", user, "--email", f"{user}@example.com")
        found = re.search(r"\S+/setup/\S+", printed)
        assert found, printed
        return found.group(0)

    def console_log(self) -> str:
        return (self.data_dir / "console.log").read_text()


@contextmanager
def running_up(folder: Path) -> Iterator[Up]:
    """`keyledger up --dev` in `folder` until the block ends."""
    out = folder / "up.out"
    with up_dev(folder / "data", out):
        yield Up(folder / "data", out)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """One `keyledger up --dev` for the whole test module (it starts in about 3 seconds)."""
    with running_up(tmp_path_factory.mktemp("up")) as running:
        yield running


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if CHROMIUM.exists():
        return None
    return (
        f"no browser at {CHROMIUM}: install Debian's chromium package "
        "(apt-get install chromium; .ci/run does it)"
    )


def require_browser() -> None:
    """Skip the calling test without the browser; fail it instead on CI."""
    if (why := browser_missing()) is not None:
        if os.environ.get("KEYLEDGER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"KEYLEDGER_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless chromium from the system package (Playwright's download is not used)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where a browser test leaves its screenshots (under pytest's tmp dir, not committed)."""
    folder = tmp_path / "artifacts"
    folder.mkdir()
    return folder
