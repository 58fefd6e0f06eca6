"""The keyledger CLI end to end: a real nats-server, the keys service in-process."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from contracts import keyformat
from contracts.calendar import add_months
from keyledger.cli import app
from keyledger.local.server import free_port
from tests.drivers.cli import ENTRY_POINT, Cli, field

if TYPE_CHECKING:
    from pathlib import Path

# no developer's KEYLEDGER_* variables or working directory leak in
pytestmark = pytest.mark.usefixtures("no_ambient_config")


def walked_through(acme: Cli) -> tuple[str, str]:
    """The README's steps on account acme: generate, show, rotate, deactivate; both keys."""
    key = acme.json("key", "generate", "acme", "--as", "alice")["key"]
    acme.ok("key", "show", "acme", "--as", "alice")
    rotated = acme.ok("key", "rotate", "acme", "--as", "alice", "--yes").stdout
    acme.ok("key", "deactivate", "acme", "--as", "alice", "--yes")
    return key, field(rotated, "key")


@pytest.mark.nats
def test_key_show_prints_the_key_its_id_its_age_and_when_to_rotate(acme: Cli) -> None:
    created = acme.json("key", "generate", "acme", "--as", "alice")
    shown = acme.ok("key", "show", "acme", "--as", "alice").stdout
    assert field(shown, "key") == created["key"]
    assert field(shown, "key id") == created["key_id"]
    assert field(shown, "age") == "0 days"
    created_at = datetime.fromisoformat(field(shown, "created").replace("Z", "+00:00"))
    assert abs(created_at - datetime.now(UTC)) < timedelta(minutes=1)
    rotate_by = add_months(created_at, 6).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert field(shown, "recommended rotation") == rotate_by


@pytest.mark.nats
def test_key_verify_names_the_account_and_key_and_reads_the_key_from_stdin(acme: Cli) -> None:
    created = acme.json("key", "generate", "acme", "--as", "alice")
    valid = acme.ok("key", "verify", created["key"]).stdout
    assert "acme" in valid
    assert created["key_id"] in valid
    from_stdin = acme.runner.invoke(
        app, ["key", "verify", "-", "--nats-url", acme.url], input=created["key"]
    )
    assert from_stdin.exit_code == 0, from_stdin.stderr


@pytest.mark.nats
def test_a_rotated_out_key_fails_verify_without_being_echoed(acme: Cli) -> None:
    created = acme.json("key", "generate", "acme", "--as", "alice")
    key = created["key"]
    rotated = acme.ok("key", "rotate", "acme", "--as", "alice", "--yes").stdout
    new_key = field(rotated, "key")
    assert new_key != key
    assert field(rotated, "previous key") == created["key_id"]

    old = acme("key", "verify", key)
    assert old.exit_code == 1
    assert "error: invalid_key: deactivated" in old.stderr
    assert key not in old.stderr + old.stdout  # a key is never echoed in an error
    acme.ok("key", "verify", new_key)


@pytest.mark.nats
def test_deactivate_retires_the_live_key(acme: Cli) -> None:
    acme.ok("key", "generate", "acme", "--as", "alice")
    rotated = acme.ok("key", "rotate", "acme", "--as", "alice", "--yes").stdout
    gone = acme.ok("key", "deactivate", "acme", "--as", "alice", "--yes").stdout
    assert field(gone, "deactivated") == field(rotated, "key id")
    assert acme("key", "verify", field(rotated, "key")).exit_code == 1


@pytest.mark.nats
def test_the_audit_log_lists_each_step_by_its_actor_without_a_secret(acme: Cli) -> None:
    key, new_key = walked_through(acme)
    entries = acme.audit("acme", wanted=5)
    assert [e["action"] for e in entries] == [
        "deactivated",
        "rotated",
        "viewed",
        "created",
        "account_opened",
    ]
    assert {e["actor"] for e in entries} == {"alice"}
    log = acme.ok("audit", "acme").stdout.splitlines()
    assert [line.split()[2] for line in log] == ["alice"] * 5
    assert [line.split()[3] for line in log][:4] == ["deactivated", "rotated", "viewed", "created"]
    for secret in (key, new_key):
        assert secret not in "\n".join(log)


@pytest.mark.nats
def test_replay_verifies_each_event_in_order_without_a_secret(acme: Cli) -> None:
    key, new_key = walked_through(acme)
    replayed = acme.ok("replay", "--verify").stdout
    assert "verified 5 events in 1 account: OK" in replayed
    lines = replayed.splitlines()[:-1]
    assert [line.split()[5] for line in lines] == [
        "AccountOpened",
        "KeyGenerated",
        "KeyViewed",
        "KeyRotated",
        "KeyDeactivated",
    ]
    for secret in (key, new_key):
        assert secret not in replayed


@pytest.mark.nats
def test_rotate_without_yes_changes_nothing(acme: Cli) -> None:
    created = acme.json("key", "generate", "acme", "--as", "alice")
    refused = acme("key", "rotate", "acme", "--as", "alice")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: confirmation_required: ")
    assert "--yes" in refused.stderr
    assert refused.stdout == ""

    not_deactivated = acme("key", "deactivate", "acme", "--as", "alice")
    assert not_deactivated.exit_code == 1
    assert "confirmation_required" in not_deactivated.stderr

    acme.ok("key", "verify", created["key"])
    assert acme.json("key", "show", "acme", "--as", "alice")["key_id"] == created["key_id"]
    types = [e["event"]["type"] for e in acme.json("replay")["events"]]
    assert types == ["AccountOpened", "KeyGenerated", "KeyViewed"]


@pytest.mark.nats
def test_only_super_admins_touch_the_key(acme: Cli) -> None:
    acme.ok("key", "generate", "acme", "--as", "alice")
    refused = acme("key", "show", "acme", "--as", "mallory")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: not_authorized: ")
    assert "klk_" not in refused.stdout + refused.stderr

    acme.ok("admin", "grant", "acme", "bob", "--email", "bob@example.com", "--as", "alice")
    acme.ok("key", "show", "acme", "--as", "bob")
    revoked = acme.json("admin", "revoke", "acme", "bob", "--as", "alice")
    assert revoked == {"account_id": "acme", "super_admins": ["alice"]}
    assert acme("key", "show", "acme", "--as", "bob").exit_code == 1
    last = acme("admin", "revoke", "acme", "alice", "--as", "alice")
    assert last.exit_code == 1
    assert "last_super_admin" in last.stderr


@pytest.mark.nats
def test_json_shapes(acme: Cli) -> None:
    opened = acme.json("account", "open", "globex", "--owner", "gina", "--email", "g@example.com")
    assert opened == {"account_id": "globex", "super_admins": ["gina"]}
    key_fields = {"account_id", "key", "key_id", "hint", "created_at", "age_seconds"}
    created = acme.json("key", "generate", "acme", "--as", "alice")
    assert key_fields | {"recommended_rotation_at"} <= set(created)
    assert acme.json("key", "show", "acme", "--as", "alice")["key"] == created["key"]
    rotated = acme.json("key", "rotate", "acme", "--as", "alice", "--yes", "--grace", "1h")
    assert rotated["previous_key_id"] == created["key_id"]
    grace = datetime.fromisoformat(rotated["previous_key_grace_until"])
    assert timedelta(minutes=59) < grace - datetime.now(UTC) <= timedelta(hours=1)
    assert acme.json("key", "verify", created["key"])["valid"] is True  # still in grace

    invalid = acme.json("key", "verify", "klk_nonsense", exit_code=1)
    assert invalid == {"valid": False, "account_id": None, "key_id": None, "reason": "malformed"}

    gone = acme.json("key", "deactivate", "acme", "--as", "alice", "--yes")
    assert set(gone) == {"account_id", "key_id", "deactivated_at"}
    assert acme.json("key", "verify", created["key"], exit_code=1)["reason"] == "deactivated"

    refused = acme.json("key", "show", "acme", "--as", "alice", exit_code=1)
    assert refused == {"error": {"code": "no_active_key", "message": refused["error"]["message"]}}

    page = acme.json("audit", "acme", "--limit", "2")
    assert set(page) == {"account_id", "items", "next_cursor"}
    replay = acme.json("replay", "--verify")
    verified = {
        "events": 6,
        "accounts": 2,
        "ok": True,
        "checkpoints": 0,
        "signatures_checked": False,
    }
    assert replay["verified"] == verified
    assert {"stream_seq", "event", "unreadable"} == set(replay["events"][0])


@pytest.mark.nats
def test_unreachable_services_exit_3(nats_url: str, tmp_path: Path) -> None:
    well_formed = keyformat.generate()  # a malformed key is refused locally, with no request
    nobody = CliRunner().invoke(app, ["key", "verify", well_formed, "--nats-url", nats_url])
    assert nobody.exit_code == 3  # NATS is up, but no keys service answers
    assert nobody.stderr.startswith("error: unreachable: no service answers keys.verify")

    dead = f"nats://127.0.0.1:{free_port()}"
    down = CliRunner().invoke(
        app, ["key", "show", "acme", "--as", "a", "--nats-url", dead, "--json"]
    )
    assert down.exit_code == 3
    assert json.loads(down.stdout)["error"]["code"] == "unreachable"

    not_up = CliRunner().invoke(app, ["audit", "acme", "--data-dir", str(tmp_path / "none")])
    assert not_up.exit_code == 3
    assert "keyledger up" in not_up.stderr

    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "nats.url").write_text(nats_url + "\n")
    found = subprocess.run(
        [str(ENTRY_POINT), "replay", "--verify"],
        env={"KEYLEDGER_DATA_DIR": str(tmp_path / "up"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # nats.url was found and used: the server answers, only the KEYS stream is missing
    assert found.returncode == 1, found.stderr
    assert "error: unknown_stream" in found.stderr


def test_entry_point_exit_codes(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "KEYLEDGER_DATA_DIR": str(tmp_path)}
    run = [str(ENTRY_POINT), "key", "rotate", "acme", "--as", "alice", "--yes"]
    bad = subprocess.run([*run, "--grace", "3 weeks"], env=env, capture_output=True, timeout=60)
    assert bad.returncode == 2
    missing = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 3
    assert "make run" in missing.stderr
