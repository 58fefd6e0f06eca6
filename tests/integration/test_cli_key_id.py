"""`key rotate` and `key deactivate` act only on the key the person read (or named)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.drivers.cli import Cli

# no developer's KEYLEDGER_* variables or working directory leak in
pytestmark = [pytest.mark.nats, pytest.mark.usefixtures("no_ambient_config")]


def test_a_stale_key_id_is_refused_as_superseded_and_changes_nothing(acme: Cli) -> None:
    first = acme.json("key", "generate", "acme", "--as", "alice")
    rotated = acme.json("key", "rotate", "acme", "--as", "alice", "--yes")  # reads the live key
    assert rotated["previous_key_id"] == first["key_id"]
    for verb in ("rotate", "deactivate"):
        stale = acme("key", verb, "acme", "--as", "alice", "--yes", "--key-id", first["key_id"])
        assert stale.exit_code == 1
        assert stale.stdout == ""
        assert stale.stderr.startswith(
            f"error: superseded: key {first['key_id']} is no longer the live key: "
            f"{rotated['key_id']} replaced it (rotated by alice at "
        )
        assert "hint: nothing changed" in stale.stderr
    acme.ok("key", "verify", rotated["key"])
    named = acme.json(
        "key", "deactivate", "acme", "--as", "alice", "--yes", "--key-id", rotated["key_id"]
    )
    assert named["key_id"] == rotated["key_id"]


def test_rotate_without_a_key_says_so_before_anything_happens(acme: Cli) -> None:
    refused = acme("key", "rotate", "acme", "--as", "alice", "--yes")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: no_active_key: ")
