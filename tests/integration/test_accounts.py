"""The known attacks on a running `keyledger up --dev`, each refused or harmless with the
streams unchanged; operators added while it runs, each reading only its own replies."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from typer.testing import CliRunner

from contracts.connection import credentials_file
from keyledger.cli import app
from keyledger.deploy.permissions import CALLS, IDENTITIES, KEYS, NOTIFY, ORIGIN_API
from tests.drivers.permissions import (
    System,
    a_call,
    add_operator,
    connect,
    snapshot,
    unchanged,
)

pytestmark = pytest.mark.nats
VICTIM, CAROL = "victim", "carol"


@pytest.fixture(scope="module")
def victim(system: System) -> str:
    """An account with a live key, and the operator carol added while the system runs."""
    system.cli("account", "open", VICTIM, "--owner", "alice", "--email", "alice@example.com")
    key = str(system.cli("key", "generate", VICTIM, "--as", "alice")["key"])
    for _ in range(10):  # every service's consumers in place: the notifier has seen the key
        if system.cli("reminders", "sweep", "--as-of", "+6mo")["published"]:
            break
    else:
        raise AssertionError("no reminder was ever sent")
    out = add_operator(system, CAROL)
    assert "reloaded nats-server pid" in out
    return key


def _still_serves(system: System, key: str) -> None:
    """What the attack used to break: reveal, verify and the chain proof."""
    assert system.cli("key", "show", VICTIM, "--as", "alice")["key"] == key
    assert system.cli("key", "verify", key)["valid"] is True
    assert system.cli("replay", "--verify")["verified"]["ok"] is True


@pytest.mark.parametrize("aimed_at", [f"keys.events.{VICTIM}", f"notify.events.{VICTIM}"])
async def test_a_gateways_call_with_its_ack_aimed_at_a_stream_stores_only_the_call(
    system: System, victim: str, aimed_at: str
) -> None:
    admin, gateway = await connect(system, "admin"), await connect(system, "gateway")
    try:
        js = admin.nc.jetstream()
        before = await snapshot(js)
        call = a_call()
        body = call.model_dump_json().encode()
        await gateway.nc.publish("calls.recorded.acme", body, reply=aimed_at)
        await gateway.nc.flush()
        await asyncio.sleep(0.3)  # an ack the stream took would be stored by now
        after = await snapshot(js)
        assert gateway.errors == []
        assert unchanged({s: before[s] for s in (KEYS, NOTIFY)}, after, (KEYS, NOTIFY)) == []
        assert after[CALLS].last_seq == before[CALLS].last_seq + 1  # the call, nothing else
        assert json.loads((await js.get_msg(CALLS, after[CALLS].last_seq)).data) == json.loads(body)
    finally:
        await gateway.nc.close()
        await admin.nc.close()
    await asyncio.to_thread(_still_serves, system, victim)  # the CLI runs its own loop


@pytest.mark.parametrize("aimed_at", [f"keys.events.{VICTIM}", f"notify.events.{VICTIM}"])
@pytest.mark.parametrize("api", [f"$JS.API.STREAM.INFO.{KEYS}", f"{ORIGIN_API}.STREAM.INFO.{KEYS}"])
async def test_an_auditors_api_request_with_its_answer_aimed_at_a_stream_stores_nothing(
    system: System, victim: str, api: str, aimed_at: str
) -> None:
    admin, auditor = await connect(system, "admin"), await connect(system, "auditor")
    try:
        js = admin.nc.jetstream()
        before = await snapshot(js)
        await auditor.nc.publish(api, b"", reply=aimed_at)
        await auditor.nc.flush()
        await asyncio.sleep(0.3)
        assert auditor.errors == []  # allowed: the answer just never leaves its account
        assert unchanged(before, await snapshot(js)) == []
    finally:
        await auditor.nc.close()
        await admin.nc.close()
    await asyncio.to_thread(_still_serves, system, victim)  # the CLI runs its own loop


def test_an_operator_added_while_running_acts_at_once(
    system: System, victim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert system.cli("key", "show", VICTIM, "--as", "alice", operator=CAROL)["key"] == victim
    monkeypatch.setenv("KEYLEDGER_OPERATOR", CAROL)
    assert system.cli("key", "verify", victim)["valid"] is True
    listed = CliRunner().invoke(app, ["operator", "list", "--data-dir", str(system.data_dir)])
    assert listed.stdout.split() == [CAROL, "cli", "console"]


def test_the_history_names_the_operator_each_command_came_through(
    system: System, victim: str
) -> None:
    """`via` is what the server stamped on the request, not what the client claimed."""
    system.cli("key", "show", VICTIM, "--as", "alice", operator=CAROL)
    system.cli("key", "show", VICTIM, "--as", "alice")
    wanted = [
        ("viewed", "alice", {"account": "FRONTENDS", "user": "cli"}),
        ("viewed", "alice", {"account": "FRONTENDS", "user": CAROL}),
    ]
    for _ in range(50):  # the audit log is a projection: it may trail a command a moment
        items = system.cli("audit", VICTIM, "--limit", "2")["items"]
        found = [(i["action"], i["actor"], i["via"]) for i in items]
        if found == wanted:
            break
        time.sleep(0.1)
    assert found == wanted
    last_two = system.cli("replay", "--account", VICTIM)["events"][-2:]
    assert [e["event"]["via"]["user"] for e in last_two] == [CAROL, "cli"]


@pytest.mark.parametrize("who", [i for i in IDENTITIES if i != "admin"])
async def test_an_operators_replies_are_readable_by_nobody_else(
    system: System, victim: str, who: str
) -> None:
    """Every other identity is refused carol's inbox, the shared `_INBOX`, and `_R_`
    (where a reply from the services' account starts out); carol is refused theirs."""
    me, carol = await connect(system, who), await connect(system, CAROL)
    try:
        for subject in (f"_INBOX_{CAROL}.>", "_INBOX.>", "_R_.>"):
            await me.nc.subscribe(subject)
            await me.nc.flush()
            assert await me.refused("subscription", subject), (subject, me.errors)
        await carol.nc.subscribe(f"_INBOX_{who}.>")
        await carol.nc.flush()
        assert await carol.refused("subscription", f"_INBOX_{who}.>"), carol.errors
    finally:
        await me.nc.close()
        await carol.nc.close()


@pytest.mark.parametrize(
    "name", ["keys", "auditor", "cli", "console", CAROL, "Bob", "a.b", "x>", "9x"]
)
def test_operator_add_refuses_a_taken_or_bad_name_and_writes_nothing(
    system: System, victim: str, name: str
) -> None:
    folder = system.data_dir / "credentials"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = CliRunner().invoke(app, ["operator", "add", name, "--data-dir", str(system.data_dir)])
    assert result.exit_code == 2
    assert "invalid_request" in result.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_an_unknown_operator_is_refused_before_connecting(system: System, victim: str) -> None:
    argv = ["--operator", "nobody", "key", "verify", victim, "--data-dir", str(system.data_dir)]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 3
    assert "keyledger operator add nobody" in result.stderr


def test_the_credentials_file_setting_still_wins(
    system: System, victim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the gateway, whose account imports no command, `key show` reaches nobody."""
    gateway = credentials_file(system.data_dir, "gateway")
    monkeypatch.setenv("KEYLEDGER_NATS_CREDENTIALS_FILE", str(gateway))
    argv = ["--operator", CAROL, "key", "show", VICTIM, "--as", "alice"]
    result = CliRunner().invoke(app, [*argv, "--data-dir", str(system.data_dir)])
    assert result.exit_code == 3, result.stdout
