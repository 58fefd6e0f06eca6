"""Shared by the CLI tests: the keys service in-process and a CliRunner that targets it."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faststream import TestApp
from typer.testing import CliRunner, Result

from keyledger.cli import app
from services.keys.app import create_app
from services.keys.settings import KeysSettings
from services.keys.vault import new_master_key

ENTRY_POINT = Path(sys.executable).parent / "keyledger"


@pytest.fixture(autouse=True)
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


class Cli:
    """Runs `keyledger ...` in-process against one NATS URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, [*args, "--nats-url", self.url])

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    def json(self, *args: str, exit_code: int = 0) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == exit_code, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    def audit(self, account: str, wanted: int) -> list[dict[str, Any]]:
        """The audit log is a projection: wait until it holds `wanted` entries."""
        deadline = time.monotonic() + 10
        while True:
            items = self.json("audit", account, "--all")["items"]
            if len(items) >= wanted or time.monotonic() > deadline:
                return list(items)
            time.sleep(0.1)


@pytest.fixture
def cli(cli_service: str) -> Cli:
    return Cli(cli_service)


@pytest.fixture
def acme(cli: Cli) -> Cli:
    cli.ok("account", "open", "acme", "--owner", "alice", "--email", "alice@example.com")
    return cli


def field(output: str, label: str) -> str:
    for line in output.splitlines():
        if line.startswith(f"{label}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {label!r} line in {output!r}")
