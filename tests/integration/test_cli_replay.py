"""The CLI's audit paging and `replay`: filters, empty streams and a tampered copy of KEYS."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import nats
import pytest
from nats.js import api

from contracts.envelope import canonical_json
from keyledger.audit.replay import read_stream

if TYPE_CHECKING:
    from tests.drivers.cli import Cli

# no developer's KEYLEDGER_* variables or working directory leak in
pytestmark = pytest.mark.usefixtures("no_ambient_config")


@pytest.mark.nats
def test_audit_pages_and_replay_account_filter(acme: Cli) -> None:
    acme.ok("account", "open", "globex", "--owner", "gina", "--email", "g@example.com")
    acme.ok("key", "generate", "acme", "--as", "alice")
    for _ in range(4):
        acme.ok("key", "show", "acme", "--as", "alice")
    everything = acme.audit("acme", wanted=6)
    assert [e["sequence"] for e in everything] == [6, 5, 4, 3, 2, 1]

    first = acme.json("audit", "acme", "--limit", "2")
    assert [e["sequence"] for e in first["items"]] == [6, 5]
    assert first["next_cursor"] == 5
    assert len(acme.ok("audit", "acme", "--limit", "2").stdout.splitlines()) == 2
    assert acme.json("audit", "acme", "--limit", "2", "--all")["items"] == everything

    only_acme = acme.ok("replay", "--account", "acme").stdout.splitlines()
    assert len(only_acme) == 6
    assert all(line.split()[1] == "acme" for line in only_acme)
    assert acme.ok("replay", "--account", "nobody").stdout == ""
    checked = acme.ok("replay", "--account", "globex", "--verify").stdout.splitlines()
    assert len(checked) == 2
    assert checked[-1] == "verified 7 events in 2 accounts: OK"


@pytest.mark.nats
def test_replay_of_an_empty_stream(cli: Cli) -> None:
    assert cli.ok("replay").stdout == ""
    assert cli.ok("replay", "--verify").stdout == "verified 0 events in 0 accounts: OK\n"


async def _copy_stream(url: str, name: str, alter: tuple[str, int] | None) -> None:
    """Copy KEYS into stream `name` (subjects copy.<subject>), altering one event's payload."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=name, subjects=[f"copy.{name}.keys.events.>"])
        async for _, data in read_stream(nc):
            raw = json.loads(data)
            if alter == (raw["stream_id"], raw["sequence"]):
                raw["payload"]["key_id"] = "key_forged"
            subject = f"copy.{name}.keys.events.{raw['stream_id']}"
            await js.publish(subject, canonical_json(raw), stream=name)
        consumers = await js.consumers_info("KEYS")
        assert all(c.config.durable_name in (None, "keys-audit") for c in consumers)
        assert all(
            c.config.ack_policy == api.AckPolicy.NONE
            for c in consumers
            if not c.config.durable_name
        )
    finally:
        await nc.close()


@pytest.mark.nats
def test_replay_verify_names_an_altered_event(acme: Cli) -> None:
    acme.ok("account", "open", "globex", "--owner", "gina", "--email", "g@example.com")
    acme.ok("key", "generate", "acme", "--as", "alice")
    acme.ok("key", "generate", "globex", "--as", "gina")
    acme.ok("key", "show", "acme", "--as", "alice")
    asyncio.run(_copy_stream(acme.url, "KEYSGOOD", alter=None))
    asyncio.run(_copy_stream(acme.url, "KEYSCOPY", alter=("acme", 2)))

    intact = acme("replay", "--verify", "--stream", "KEYSGOOD", "--subject", "copy.KEYSGOOD.>")
    assert intact.exit_code == 0, intact.stderr
    assert "verified 5 events in 2 accounts: OK" in intact.stdout

    broken = acme("replay", "--verify", "--stream", "KEYSCOPY", "--subject", "copy.KEYSCOPY.>")
    assert broken.exit_code == 1
    assert broken.stderr.startswith(
        "error: chain_broken: stream sequence 3 (account acme, sequence 2)"
    )
    assert "altered" in broken.stderr

    doc = acme.json(
        "replay", "--verify", "--stream", "KEYSCOPY", "--subject", "copy.KEYSCOPY.>", exit_code=1
    )
    assert doc["error"]["code"] == "chain_broken"
    assert (doc["problem"]["account"], doc["problem"]["sequence"]) == ("acme", 2)
    assert acme.ok("replay", "--verify").stdout.endswith("OK\n")  # the real stream is intact
