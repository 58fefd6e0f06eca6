"""Separate accounts on a bare server (the generated users, the three streams): an answer
aimed at a stream from outside the services' account is never stored, and the auditor
reads its account's copies of the streams, long ones too."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from nats.js.errors import NotFoundError

from contracts.calllog import CALLS_STREAM
from contracts.notifier import NOTIFY_STREAM
from keyledger.audit.replay import read_stream
from keyledger.deploy.accounts import render_accounts
from keyledger.deploy.auditcopy import CopyMismatch, ensure_copies
from keyledger.deploy.permissions import CALLS, KEYS, NOTIFY, ORIGIN_API, ensure_credentials
from keyledger.local.server import NatsServer
from services.common.streams import ensure_stream
from tests.drivers.permissions import System, connect

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.nats
JS = "$JS.API"


@pytest.mark.parametrize("aimed_at", ["keys.events.victim", "notify.events.victim"])
@pytest.mark.parametrize(
    ("identity", "subject", "body"),
    [
        ("gateway", "calls.recorded.acme", b"{}"),  # the stream's publish ack
        ("auditor", f"{JS}.STREAM.INFO.{CALLS}", b""),  # its own account's API
        ("auditor", f"{ORIGIN_API}.STREAM.INFO.{KEYS}", b""),  # the services', imported
        ("cli", "keys.query.health", b""),  # nobody answers here: core NATS only
    ],
)
async def test_a_server_answer_aimed_at_a_stream_is_not_stored(
    bare: System, identity: str, subject: str, body: bytes, aimed_at: str
) -> None:
    admin, me = await connect(bare, "admin"), await connect(bare, identity)
    try:
        js = admin.nc.jetstream()
        await me.nc.publish(subject, body, reply=aimed_at)
        await me.nc.flush()
        await asyncio.sleep(0.2)
        assert me.errors == []  # the request itself is allowed
        assert (await js.stream_info(KEYS)).state.messages == 0
        assert (await js.stream_info(NOTIFY)).state.messages == 0
        stored = 1 if subject.startswith("calls.recorded.") else 0  # the body, not the answer
        assert (await js.stream_info(CALLS)).state.messages == stored
    finally:
        await me.nc.close()
        await admin.nc.close()


async def test_an_auditor_reads_a_stream_longer_than_one_flow_control_window(
    bare: System,
) -> None:
    """The copy and the auditor's ordered consumer on it both stall unless flow control
    replies get through ($JS.FC, across the accounts for the copy)."""
    admin, auditor = await connect(bare, "admin"), await connect(bare, "auditor")
    try:
        js, body = admin.nc.jetstream(), b"x" * 2048
        for start in range(0, 3000, 500):
            sent = (js.publish(f"keys.events.a{i % 50}", body) for i in range(start, start + 500))
            await asyncio.gather(*sent)
        await ensure_copies(auditor.nc)
        read = [seq async for seq, _ in read_stream(auditor.nc)]
        assert read == list(range(1, 3001))
        assert auditor.errors == []
    finally:
        await auditor.nc.close()
        await admin.nc.close()


async def test_the_copy_follows_and_stores_nothing_published_in_the_auditors_account(
    bare: System,
) -> None:
    admin, auditor = await connect(bare, "admin"), await connect(bare, "auditor")
    try:
        await ensure_copies(auditor.nc)
        await admin.nc.jetstream().publish("keys.events.acme", b"first")
        await auditor.nc.publish("keys.events.acme", b"forged")  # refused: not its subject
        await auditor.nc.flush()
        mine = auditor.nc.jetstream()
        for _ in range(100):
            if (await mine.stream_info(KEYS)).state.messages:
                break
            await asyncio.sleep(0.02)
        assert [data async for _, data in read_stream(auditor.nc)] == [b"first"]
        assert await auditor.refused("publish", "keys.events.acme")
    finally:
        await auditor.nc.close()
        await admin.nc.close()


async def test_copies_keep_what_the_originals_keep_and_a_foreign_one_is_refused(
    tmp_path: Path,
) -> None:
    passwords = {i: found.password for i, found in ensure_credentials(tmp_path).items()}
    auth = render_accounts(passwords)
    with NatsServer.start(tmp_path / "js", authorization=auth, die_with_parent=True) as server:
        where = System(tmp_path, server.url, "")
        admin, auditor = await connect(where, "admin"), await connect(where, "auditor")
        try:
            for spec in (CALLS_STREAM, NOTIFY_STREAM):
                await ensure_stream(admin.nc.jetstream(), spec)
            mine = auditor.nc.jetstream()
            # an auditor's own stream by a copy's name, which would copy nothing
            await mine.add_stream(name=NOTIFY, subjects=["mine.>"])
            with pytest.raises(CopyMismatch, match="not a copy"):
                await ensure_copies(auditor.nc)
            calls = await mine.stream_info(CALLS)
            assert calls.config.max_age == CALLS_STREAM.max_age_seconds
            assert calls.config.subjects in (None, [])
            with pytest.raises(NotFoundError):  # KEYS is not declared yet: no copy either
                await mine.stream_info(KEYS)
        finally:
            await auditor.nc.close()
            await admin.nc.close()
