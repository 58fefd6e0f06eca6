"""`keyledger up --dev` as a newcomer runs it: the example gateway, real calls, the call log."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from typer.testing import CliRunner

from keyledger.cli import app
from tests.drivers.up_process import up_dev

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.nats


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """`keyledger up --dev` running until the test ends, then stopped with Ctrl-C."""
    folder, out = tmp_path / "kl", tmp_path / "up.out"
    with up_dev(folder, out) as proc:
        yield folder
    assert proc.returncode == 0, out.read_text()
    assert not (folder / "gateway.url").exists()


def cli(folder: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(folder), "--json"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_calls_through_the_example_gateway_show_up_in_the_call_log(data_dir: Path) -> None:
    cli(data_dir, "account", "open", "acme", "--owner", "alice", "--email", "alice@example.com")
    key = cli(data_dir, "key", "generate", "acme", "--as", "alice")
    api = (data_dir / "gateway.url").read_text().strip()
    assert api.startswith("http://127.0.0.1:")
    auth = {"Authorization": f"Bearer {key['key']}"}
    with httpx.Client(base_url=api, timeout=10) as http:
        assert http.get("/v1/ping", headers=auth).json()["account_id"] == "acme"
        contact = {"name": "Ada", "email": "ada@example.com"}
        assert http.post("/v1/contacts", headers=auth, json=contact).status_code == 201
        assert http.get("/v1/contacts", headers={"X-API-Key": key["key"]}).status_code == 200
        assert http.get("/v1/ping", headers={"X-API-Key": "klk_wrong"}).status_code == 401
        rotated = cli(data_dir, "key", "rotate", "acme", "--as", "alice", "--yes")
        assert http.get("/v1/ping", headers=auth).status_code == 401
        fresh = {"Authorization": f"Bearer {rotated['key']}"}
        assert http.get(f"/v1/ping?hapikey={rotated['key']}", headers=fresh).status_code == 200

    deadline = time.monotonic() + 10
    while len(items := cli(data_dir, "calls", "acme")["items"]) < 4:
        assert time.monotonic() < deadline, items
        time.sleep(0.1)
    assert [(c["method"], c["path"], c["status"]) for c in items] == [
        ("GET", "/v1/ping", 200),
        ("GET", "/v1/contacts", 200),
        ("POST", "/v1/contacts", 201),
        ("GET", "/v1/ping", 200),
    ]
    assert items[0]["key_id"] == rotated["key_id"]
    stats = cli(data_dir, "calls", "stats", "acme")
    assert stats["total"] == 4
    assert cli(data_dir, "key", "show", "acme", "--as", "alice")["last_used_at"] is not None
    logs = "".join(p.read_text() for p in data_dir.glob("*.log"))
    assert key["key"] not in logs
    assert rotated["key"] not in logs
