"""`keyledger ...` run in-process with CliRunner against one NATS URL, and its output read."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from keyledger.cli import app

ENTRY_POINT = Path(sys.executable).parent / "keyledger"


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


def field(output: str, label: str) -> str:
    """The value of the `label: value` line of human-readable output."""
    for line in output.splitlines():
        if line.startswith(f"{label}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {label!r} line in {output!r}")
