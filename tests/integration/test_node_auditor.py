"""nats.js's current API (`js.consumers.get(stream)`, an ordered pull consumer) reads every
KEYS event as the auditor, from the auditors' copy, exactly as KEYS holds them."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from typing import Any

import pytest

from contracts.connection import credentials_file
from keyledger.audit.replay import read_stream
from keyledger.deploy.auditcopy import ensure_copies
from tests.drivers.node import TESTS_NODE, node_with
from tests.drivers.permissions import System, connect

pytestmark = pytest.mark.nats
READ_TIMEOUT = 60


def _node() -> str:
    return node_with(TESTS_NODE, "nats", why="the nats.js auditor check")


async def _read_with_nats_js(node: str, where: System, stream: str) -> list[dict[str, Any]]:
    """tests/node/auditor.mjs as the auditor: one {"seq", "subject", "data"} per message."""
    creds = credentials_file(where.data_dir, "auditor")
    done = await asyncio.to_thread(
        subprocess.run,
        [node, str(TESTS_NODE / "auditor.mjs"), where.url, str(creds), stream],
        capture_output=True,
        text=True,
        timeout=READ_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


async def test_nats_js_reads_every_keys_event_as_the_auditor(bare: System) -> None:
    node = _node()
    admin, auditor = await connect(bare, "admin"), await connect(bare, "auditor")
    try:
        js = admin.nc.jetstream()
        # more than one pull batch and one flow-control window of the copy's source
        for start in range(0, 1200, 300):
            sent = [
                js.publish(f"keys.events.a{i % 7}", json.dumps({"n": i}).encode() * 20)
                for i in range(start, start + 300)
            ]
            await asyncio.gather(*sent)
        await ensure_copies(auditor.nc)
        wanted = [(seq, data) async for seq, data in read_stream(admin.nc)]
    finally:
        await auditor.nc.close()
        await admin.nc.close()
    read = await _read_with_nats_js(node, bare, "KEYS")
    assert [(r["seq"], base64.b64decode(r["data"])) for r in read] == wanted
    assert len(read) == 1200
    assert {r["subject"] for r in read} == {f"keys.events.a{i}" for i in range(7)}


async def test_nats_js_reads_keys_from_a_fresh_keyledger_up_without_any_keyledger_tool(
    system: System,
) -> None:
    """`keyledger up` made the auditors' copies itself: an auditor who never ran keyledger
    finds KEYS and reads every event the services wrote."""
    node = _node()
    opened = ("account", "open", "acme", "--owner", "alice", "--email", "alice@example.com")
    await asyncio.to_thread(system.cli, *opened)  # the CLI runs its own event loop
    await asyncio.to_thread(system.cli, "key", "generate", "acme", "--as", "alice")
    admin, auditor = await connect(system, "admin"), await connect(system, "auditor")
    try:
        wanted = [(seq, data) async for seq, data in read_stream(admin.nc)]
        assert len(wanted) >= 2
        copy = auditor.nc.jetstream()
        for _ in range(100):  # the copy is sourced: it trails its original by a moment
            if (await copy.stream_info("KEYS")).state.last_seq >= wanted[-1][0]:
                break
            await asyncio.sleep(0.05)
    finally:
        await auditor.nc.close()
        await admin.nc.close()
    read = await _read_with_nats_js(node, system, "KEYS")
    assert [(r["seq"], base64.b64decode(r["data"])) for r in read] == wanted
    assert "not made yet" not in system.banner
