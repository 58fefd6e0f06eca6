"""compose.yaml cannot run here (no Docker), so check what it relies on instead."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from contracts.checkpoints import private_key_from_text
from keyledger.cli import app as cli_app
from keyledger.deploy.compose import CONFIG_FILE, NODES, env_file, nats_config, password_var
from keyledger.deploy.permissions import IDENTITIES
from keyledger.local.server import nats_server_binary
from services.calllog.settings import CallLogSettings
from services.keys.settings import KeysSettings
from services.notifier.settings import NotifierSettings

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[BaseSettings]] = {
    "keys": KeysSettings,
    "notifier": NotifierSettings,
    "calllog": CallLogSettings,
}
# the example gateway has no settings class: it reads these (keyledger.client)
GATEWAY_ENV = {"KEYLEDGER_NATS_URL", "KEYLEDGER_NATS_USER", "KEYLEDGER_NATS_PASSWORD"}
OURS = ("keys", "notifier", "calllog", "gateway")
CONSOLE = "console"  # run as `python -m services.console`, not through an entry point
ONCE = ("audit-copies",)  # one-shot jobs: keyledger CLI commands run once


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def test_the_deployment_has_every_part(compose: dict[str, Any]) -> None:
    assert set(services(compose)) == {*NODES, "postgres", "mailpit", *OURS, CONSOLE, *ONCE}
    for name in ("keys", "notifier", "calllog"):
        assert services(compose)[name]["deploy"]["replicas"] == 2
    for name, service in services(compose).items():
        if name in ONCE:  # runs to completion: nothing to check the health of
            assert service["restart"] == "on-failure"
        else:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for needed in service.get("depends_on", {}):
            assert needed in services(compose), f"{name} depends on unknown {needed}"


@pytest.mark.parametrize("name", OURS)
def test_each_command_is_an_installed_entry_point(compose: dict[str, Any], name: str) -> None:
    service = services(compose)[name]
    assert service["build"] == "."
    scripts = {ep.name: ep for ep in entry_points(group="console_scripts")}
    command = service["command"]
    assert command[0] in scripts, f"{command[0]} is not an installed console script"
    # the app factory, and for the gateway also its HTTP protocol class
    imported = [arg for arg in command if re.fullmatch(r"[\w.]+:\w+", arg)]
    assert 1 <= len(imported) <= 2
    for found in imported:
        module, attr = found.split(":")
        assert callable(getattr(importlib.import_module(module), attr))
    health = service["healthcheck"]["test"]
    if health[1] == "keyledger":  # our own CLI: the subcommand must exist
        commands = {c.name or c.callback.__name__ for c in cli_app.registered_commands}
        assert health[2] in commands
        assert health[3] == name


@pytest.mark.parametrize("name", OURS)
def test_every_environment_variable_is_a_real_setting(compose: dict[str, Any], name: str) -> None:
    env = set(services(compose)[name]["environment"])
    if name == "gateway":
        assert env <= GATEWAY_ENV
        return
    prefix = SETTINGS[name].model_config.get("env_prefix", "")
    known = {f"{prefix}{field}".upper() for field in SETTINGS[name].model_fields}
    assert env <= known, f"not settings of {name}: {sorted(env - known)}"
    assert services(compose)[name]["environment"]["KEYLEDGER_STREAM_REPLICAS"] == "3"
    assert services(compose)[name]["environment"]["KEYLEDGER_NATS_USER"] == name


def test_the_nats_config_is_the_one_the_template_renders(compose: dict[str, Any]) -> None:
    assert (ROOT / CONFIG_FILE).read_text() == nats_config()
    for node in NODES:
        service = services(compose)[node]
        assert f"./{CONFIG_FILE}:/etc/nats/nats.conf:ro" in service["volumes"]
        assert service["command"] == ["-c", "/etc/nats/nats.conf"]
        env = service["environment"]
        assert env["NATS_SERVER_NAME"] == node
        # every variable the config references is given to every node
        wanted = set(re.findall(r"^\s*\w+: \$(\w+)$", nats_config(), re.MULTILINE))
        assert len(wanted) == 1 + len(IDENTITIES)
        assert wanted <= set(env)


def test_the_rendered_config_is_valid_for_nats_server(tmp_path: Path) -> None:
    conf = tmp_path / "nats.conf"
    conf.write_text(nats_config())
    env = os.environ | {"NATS_SERVER_NAME": "nats-1"}
    env |= {password_var(identity): f"pw-{identity}" for identity in IDENTITIES}
    checked = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(conf)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_services_get_the_passwords_the_nodes_check(compose: dict[str, Any]) -> None:
    node_env = services(compose)["nats-1"]["environment"]
    for name in (*OURS, CONSOLE):
        given = services(compose)[name]["environment"]["KEYLEDGER_NATS_PASSWORD"]
        assert given == f"${{{password_var(name)}}}"
        assert password_var(name) in node_env


def test_the_env_file_holds_every_secret_compose_asks_for() -> None:
    text = (ROOT / "compose.yaml").read_text()
    asked = set(re.findall(r"\$\{(\w+)", text))
    given = {line.split("=", 1)[0] for line in env_file().splitlines() if "=" in line}
    assert asked <= given


def test_the_audit_copies_job_is_a_cli_command_run_as_the_auditor(compose: dict[str, Any]) -> None:
    service = services(compose)["audit-copies"]
    assert service["build"] == "."
    program, group, command = service["command"]
    assert program == "keyledger"
    groups = {g.name: g.typer_instance for g in cli_app.registered_groups}
    assert group in groups
    assert command in {c.name for c in groups[group].registered_commands}  # type: ignore[union-attr]
    env = service["environment"]
    assert set(env) <= GATEWAY_ENV  # the client settings, as the gateway's
    assert env["KEYLEDGER_NATS_USER"] == "auditor"
    assert env["KEYLEDGER_NATS_PASSWORD"] == "${NATS_PASSWORD_AUDITOR}"


def test_the_console_serves_on_8080_as_its_own_operator_once_the_services_are_healthy(
    compose: dict[str, Any],
) -> None:
    service = services(compose)[CONSOLE]
    assert service["build"] == "."
    assert service["command"] == [
        *("python", "-m", "services.console", "--host", "0.0.0.0", "--port", "8080")
    ]
    assert service["ports"] == ["8080:8080"]
    assert service["deploy"]["replicas"] == 1
    for needed in ("keys", "notifier", "calllog"):
        assert service["depends_on"][needed] == {"condition": "service_healthy"}
    env = service["environment"]
    assert env["KEYLEDGER_NATS_USER"] == CONSOLE
    assert env["KEYLEDGER_NATS_PASSWORD"] == f"${{{password_var(CONSOLE)}}}"
    assert env["KEYLEDGER_DB_URL"].endswith("@postgres:5432/console")
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert "CREATE DATABASE console OWNER keyledger;" in init
    assert "8080" in " ".join(service["healthcheck"]["test"])


def test_the_consoles_environment_is_its_settings(compose: dict[str, Any]) -> None:
    settings = pytest.importorskip("services.console.settings").ConsoleSettings
    prefix = settings.model_config.get("env_prefix", "")
    known = {f"{prefix}{field}".upper() for field in settings.model_fields}
    env = set(services(compose)[CONSOLE]["environment"])
    assert env <= known, f"not settings of the console: {sorted(env - known)}"


def test_keys_and_the_notifier_sign_checkpoints_with_a_key_of_their_own(
    compose: dict[str, Any],
) -> None:
    for name in ("keys", "notifier"):
        given = services(compose)[name]["environment"]["KEYLEDGER_CHECKPOINT_KEY"]
        assert given.startswith("${KEYLEDGER_CHECKPOINT_KEY")
    found = dict(line.split("=", 1) for line in env_file().splitlines() if "=" in line)
    assert found["KEYLEDGER_CHECKPOINT_KEY"] != found["KEYLEDGER_MASTER_KEY"]
    assert private_key_from_text(found["KEYLEDGER_CHECKPOINT_KEY"])  # a 32-byte Ed25519 seed
