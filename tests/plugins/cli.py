"""CLI fixtures: the keys service in-process and a `Cli` aimed at it; no ambient configuration.

`no_ambient_config` is not autouse: the CLI test modules ask for it with
`pytestmark = pytest.mark.usefixtures("no_ambient_config")`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from faststream import TestApp

from services.keys.app import create_app
from services.keys.settings import KeysSettings
from services.keys.vault import new_master_key
from tests.drivers.cli import Cli

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # a developer's own `keyledger up` or exported variables must not leak into the tests
    for name in ("KEYLEDGER_NATS_URL", "KEYLEDGER_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def cli_service(nats_url: str, tmp_path: Path) -> Iterator[str]:
    """The keys service running in this process (on TestApp's portal thread)."""
    settings = KeysSettings(
        nats_url=nats_url,
        db_url=f"sqlite+aiosqlite:///{tmp_path}/keys.db",
        master_key=new_master_key(),
    )
    with TestApp(create_app(settings)):
        yield nats_url


@pytest.fixture
def cli(cli_service: str) -> Cli:
    return Cli(cli_service)


@pytest.fixture
def acme(cli: Cli) -> Cli:
    cli.ok("account", "open", "acme", "--owner", "alice", "--email", "alice@example.com")
    return cli
