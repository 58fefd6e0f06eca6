"""CLI behaviour that needs no server: usage errors, schema export, discovery, `up`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from keyledger.cli import app
from keyledger.cli.times import parse_duration
from keyledger.client import Unreachable, discover_nats_url

# no developer's KEYLEDGER_* variables or working directory leak in
pytestmark = pytest.mark.usefixtures("no_ambient_config")


@pytest.mark.parametrize("grace", ["3x", "15", "-1m", "1.5h", "31d", ""])
def test_bad_grace_is_a_usage_error(grace: str) -> None:
    result = CliRunner().invoke(app, ["key", "rotate", "acme", "--as", "alice", "--grace", grace])
    assert result.exit_code == 2
    assert "--grace" in result.stderr


def test_missing_options_are_usage_errors() -> None:
    assert CliRunner().invoke(app, ["key", "show", "acme"]).exit_code == 2
    assert CliRunner().invoke(app, ["account", "open", "acme"]).exit_code == 2
    assert CliRunner().invoke(app, ["audit", "acme", "--limit", "0"]).exit_code == 2


def test_contracts_export_writes_strict_schemas_an_index_and_one_asyncapi_document(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(app, ["contracts", "export", str(tmp_path / "schemas")])
    assert result.exit_code == 0, result.stderr
    folder = tmp_path / "schemas"
    index = json.loads((folder / "index.json").read_text())
    for file_name in index["schemas"]:
        text = (folder / file_name).read_text()
        schema = json.loads(text)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(file_name)
        assert "discriminator" not in text
        assert "mapping" not in text
    assert index["subjects"]["keys.events.*"]["schema"] == "Envelope.schema.json"
    assert index["subjects"]["notify.events.*"]["schema"] == "NotifyEnvelope.schema.json"
    assert index["event_types"]["ReminderSent"]["envelope"] == "NotifyEnvelope.schema.json"
    assert {"calls.query.list", "keys.verify"} <= set(index["subjects"])
    assert {"time_travel_disabled", "confirmation_required"} <= set(index["error_codes"])
    rotate = json.loads((folder / "RotateKey.schema.json").read_text())
    assert {"account_id", "actor", "confirm", "grace_seconds"} <= set(rotate["properties"])
    envelope = json.loads((folder / "Envelope.schema.json").read_text())
    assert "prev_hash" in envelope["required"]
    assert json.loads((folder / "asyncapi.json").read_text())["asyncapi"] == "3.0.0"


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_nats_url_discovery(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    flag_dir, env_dir = tmp_path / "flag", tmp_path / "env"
    for folder, port in ((flag_dir, 1), (env_dir, 2), (tmp_path / ".keyledger", 3)):
        folder.mkdir()
        (folder / "nats.url").write_text(f"nats://h:{port}\n")
    assert discover_nats_url(None, None) == "nats://h:3"  # ./.keyledger (cwd is tmp_path)
    monkeypatch.setenv("KEYLEDGER_DATA_DIR", str(env_dir))
    assert discover_nats_url(None, None) == "nats://h:2"
    assert discover_nats_url(None, flag_dir) == "nats://h:1"
    monkeypatch.setenv("KEYLEDGER_NATS_URL", "nats://env:4")
    assert discover_nats_url(None, flag_dir) == "nats://env:4"
    assert discover_nats_url("nats://flag:5", flag_dir) == "nats://flag:5"
    monkeypatch.delenv("KEYLEDGER_NATS_URL")
    with pytest.raises(Unreachable, match="keyledger up"):
        discover_nats_url(None, tmp_path / "missing")


def test_up_hands_its_options_to_run_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_run_up(**options: Any) -> int:
        seen.update(options)
        return 7

    monkeypatch.setattr("keyledger.local.up.run_up", fake_run_up)
    args = [
        "up",
        "--data-dir",
        str(tmp_path),
        "--db-url",
        "sqlite+aiosqlite:///x.db",
        "--port",
        "4333",
    ]
    result = CliRunner().invoke(app, [*args, "--dev"])
    assert result.exit_code == 7
    assert seen == {
        "data_dir": tmp_path,
        "nats_url": None,
        "db_url": "sqlite+aiosqlite:///x.db",
        "port": 4333,
        "dev": True,
    }
    monkeypatch.setenv("KEYLEDGER_DATA_DIR", str(tmp_path / "env"))
    assert CliRunner().invoke(app, ["up"]).exit_code == 7
    assert seen["data_dir"] == tmp_path / "env"


def test_cluster_up_hands_its_options_to_run_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    def fake_run_up(**options: Any) -> int:
        seen.update(options)
        return 0

    monkeypatch.setattr("keyledger.local.up.run_up", fake_run_up)
    args = ["cluster", "up", "--nodes", "5", "--replicas", "2", "--data-dir", str(tmp_path)]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert seen == {
        "data_dir": tmp_path,
        "nats_url": None,
        "db_url": None,
        "dev": False,
        "nodes": 5,
        "instances": 2,
    }


@pytest.mark.parametrize(
    "args",
    [
        ["cluster", "up", "--nodes", "0"],
        ["cluster", "up", "--replicas", "0"],
        ["cluster", "up", "--nodes", "three"],
        ["health", "billing"],
        ["migrate", "--service", "billing"],
    ],
    ids=" ".join,
)
def test_bad_options_of_the_new_commands_are_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "billing" in result.stderr or "--" in result.stderr


def test_cluster_env_makes_fresh_secrets_and_config_matches_the_file() -> None:
    first = CliRunner().invoke(app, ["cluster", "env"]).stdout
    second = CliRunner().invoke(app, ["cluster", "env"]).stdout
    assert first != second  # random every time
    assert "KEYLEDGER_MASTER_KEY=" in first
    config = CliRunner().invoke(app, ["cluster", "config"]).stdout
    assert config == (Path(__file__).resolve().parents[2] / "deploy" / "nats.conf").read_text()
