"""Least privilege on a bare server (the generated users, the three streams): what the
auditor needs for long reads, and what permissions alone cannot stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contracts.calllog import CALLS_STREAM
from contracts.keys import KEYS_STREAM
from contracts.notifier import NOTIFY_STREAM
from keyledger.natsauth import CALLS, KEYS, ensure_credentials, render_authorization
from keyledger.natsserver import NatsServer
from keyledger.replay import read_stream
from services.common.streams import ensure_stream
from tests.integration.permissions_support import System, connect

pytestmark = pytest.mark.nats
JS = "$JS.API"

GAP = (
    "NATS checks no permission on a reply subject, and JetStream sends its answers (publish "
    "acks, API responses) wherever a request asks, into a stream too; permissions cannot "
    "close this, separate NATS accounts for gateways, the CLI and auditors would (README)"
)


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[System]:
    """A server with the generated users and the three streams, and nothing else."""
    passwords = {i: found.password for i, found in ensure_credentials(tmp_path).items()}
    auth = render_authorization(passwords)
    with NatsServer.start(tmp_path / "js", authorization=auth, die_with_parent=True) as server:
        where = System(tmp_path, server.url, "")
        admin = await connect(where, "admin")
        for spec in (KEYS_STREAM, CALLS_STREAM, NOTIFY_STREAM):
            await ensure_stream(admin.nc.jetstream(), spec)
        await admin.nc.close()
        yield where


@pytest.mark.xfail(strict=True, reason=GAP)
@pytest.mark.parametrize(
    ("identity", "subject", "body"),
    [
        ("gateway", "calls.recorded.acme", b"{}"),  # the stream's publish ack
        ("auditor", f"{JS}.STREAM.INFO.{CALLS}", b""),  # the API's answer
    ],
)
async def test_a_server_answer_aimed_at_a_stream_is_not_stored(
    bare: System, identity: str, subject: str, body: bytes
) -> None:
    admin, me = await connect(bare, "admin"), await connect(bare, identity)
    try:
        await me.nc.publish(subject, body, reply="keys.events.injected")
        await me.nc.flush()
        await asyncio.sleep(0.2)
        assert me.errors == []  # the request itself is allowed
        assert (await admin.nc.jetstream().stream_info(KEYS)).state.messages == 0
    finally:
        await me.nc.close()
        await admin.nc.close()


async def test_an_auditor_reads_a_stream_longer_than_one_flow_control_window(
    bare: System,
) -> None:
    """An ordered consumer stalls unless its reader may answer flow control ($JS.FC)."""
    admin, auditor = await connect(bare, "admin"), await connect(bare, "auditor")
    try:
        js, body = admin.nc.jetstream(), b"x" * 2048
        for start in range(0, 3000, 500):
            sent = (js.publish(f"keys.events.a{i % 50}", body) for i in range(start, start + 500))
            await asyncio.gather(*sent)
        read = [seq async for seq, _ in read_stream(auditor.nc)]
        assert read == list(range(1, 3001))
        assert auditor.errors == []
    finally:
        await auditor.nc.close()
        await admin.nc.close()
