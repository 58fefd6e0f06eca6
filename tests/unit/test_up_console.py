"""The web console as `keyledger up` runs it: its command, its URL file, --dev's sign-in link."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from keyledger.deploy.permissions import CONSOLE_OPERATOR, ensure_credentials
from keyledger.local import webconsole
from keyledger.local.up import default_console

if TYPE_CHECKING:
    from pathlib import Path

STAND_IN = "tests.drivers.fake_console"


def test_the_console_runs_on_loopback_with_the_interpreter_of_up() -> None:
    assert webconsole.console_command(8123) == [
        *(sys.executable, "-m", "services.console", "--host", "127.0.0.1", "--port", "8123")
    ]
    assert webconsole.CONSOLE.identity == CONSOLE_OPERATOR == "console"
    assert webconsole.CONSOLE.db_file == "console.db"


def test_up_makes_the_consoles_credentials_like_the_clis(tmp_path: Path) -> None:
    made = ensure_credentials(tmp_path)
    assert made["console"].user == "console"
    assert (tmp_path / "credentials" / "console.json").is_file()


def test_the_url_file_is_replaced_whole_and_removed(tmp_path: Path) -> None:
    webconsole.write_url(tmp_path, "http://127.0.0.1:1")
    webconsole.write_url(tmp_path, "http://127.0.0.1:2")
    assert (tmp_path / "console.url").read_text() == "http://127.0.0.1:2\n"
    assert not list(tmp_path.glob("*.tmp"))
    webconsole.remove_url(tmp_path)
    webconsole.remove_url(tmp_path)  # stopping twice is fine
    assert not (tmp_path / "console.url").exists()


def test_a_missing_console_module_is_found_missing_without_importing_it() -> None:
    assert webconsole.installed(STAND_IN)
    assert not webconsole.installed("tests.drivers.no_such_console")
    assert not webconsole.installed("no_such_package.console")


def test_stand_in_services_run_no_console_unless_given_one() -> None:
    assert default_console(real=False) is None


async def test_the_setup_link_comes_from_the_consoles_users_module() -> None:
    link = await webconsole.setup_link(
        f"{STAND_IN}.users", "sqlite+aiosqlite:///x/console.db", "http://127.0.0.1:9"
    )
    assert link == "http://127.0.0.1:9/setup/token-for-demo-demo@example.com-console.db"


async def test_a_console_without_the_setup_function_is_an_import_error() -> None:
    with pytest.raises(ImportError, match="setup_link_for_new_user"):
        await webconsole.setup_link(STAND_IN, "sqlite+aiosqlite://", "http://127.0.0.1:9")
    with pytest.raises(ImportError):
        await webconsole.setup_link("tests.drivers.no_such_console.users", "x", "y")
