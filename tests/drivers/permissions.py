"""For the least-privilege tests: `keyledger up --dev`, connections per identity, snapshots."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import nats
from typer.testing import CliRunner

from contracts.calllog import CALLS_STREAM, CallRecorded
from contracts.connection import credentials_file, inbox_prefix, read_credentials
from contracts.keys import KEYS_STREAM
from contracts.notifier import NOTIFY_STREAM
from keyledger.cli import app
from keyledger.deploy.accounts import render_accounts
from keyledger.deploy.permissions import CALLS, KEYS, NOTIFY, ensure_credentials
from keyledger.local.server import NatsServer
from services.common.streams import ensure_stream
from tests.drivers.up_process import up_dev

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from nats.aio.client import Client
    from nats.js import JetStreamContext

STREAMS = (KEYS, CALLS, NOTIFY)
OPERATOR = "bob"


def add_operator(system: System, name: str) -> str:
    """`keyledger operator add NAME` on the running system; its output."""
    result = CliRunner().invoke(app, ["operator", "add", name, "--data-dir", str(system.data_dir)])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


@dataclass(frozen=True)
class System:
    """A running `keyledger up --dev`: its data dir and NATS URL."""

    data_dir: Path
    url: str
    banner: str

    def cli(self, *args: str, operator: str | None = None) -> Any:
        """`keyledger ARGS --json` in-process: as `cli` (or `operator`), as `auditor` for
        replay."""
        chosen = ["--operator", operator] if operator else []
        argv = [*chosen, *args, "--data-dir", str(self.data_dir), "--json"]
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)


@contextmanager
def dev_system(folder: Path) -> Iterator[System]:
    """`keyledger up --dev --data-dir folder` (its output beside the folder) until the block
    ends: the whole system under its generated users."""
    out = folder.parent / "up.out"
    with up_dev(folder, out):
        yield System(folder, (folder / "nats.url").read_text().strip(), out.read_text())


@dataclass
class Identity:
    """One identity's connection, with the errors the server sent it."""

    nc: Client
    errors: list[str] = field(default_factory=list)

    async def refused(self, what: str, subject: str, within: float = 2.0) -> bool:
        """True once the server said `Permissions Violation for <what> to "<subject>"`."""
        wanted = f'permissions violation for {what} to "{subject}"'.lower()
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            if any(wanted in e.lower() for e in self.errors):
                return True
            await asyncio.sleep(0.01)
        return False


async def connect(system: System, identity: str) -> Identity:
    found = read_credentials(credentials_file(system.data_dir, identity))
    errors: list[str] = []

    async def collect(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(
        system.url,
        user=found.user,
        password=found.password,
        inbox_prefix=inbox_prefix(found.user),
        error_cb=collect,
        allow_reconnect=False,
    )
    return Identity(nc, errors)


@dataclass(frozen=True)
class StreamState:
    """What must not change: the messages, the settings and the durable consumers."""

    messages: int
    last_seq: int
    settings: tuple[object, ...]
    durables: frozenset[str]
    consumers: frozenset[str]


async def snapshot(js: JetStreamContext) -> dict[str, StreamState]:
    found = {}
    for name in STREAMS:
        info = await js.stream_info(name)
        config = info.config
        consumers = await js.consumers_info(name)
        found[name] = StreamState(
            messages=info.state.messages,
            last_seq=info.state.last_seq,
            settings=(
                tuple(config.subjects or ()),
                config.max_age,
                config.deny_delete,
                config.deny_purge,
                config.num_replicas,
            ),
            durables=frozenset(c.name for c in consumers if c.config.durable_name),
            consumers=frozenset(c.name for c in consumers),
        )
    return found


def unchanged(
    before: dict[str, StreamState],
    after: dict[str, StreamState],
    streams: tuple[str, ...] = STREAMS,
) -> list[str]:
    """What changed; ephemeral consumers of earlier reads may expire meanwhile, so only a
    consumer that appeared counts."""
    problems = []
    for name in streams:
        was, now = before[name], after[name]
        if (was.messages, was.last_seq, was.settings) != (now.messages, now.last_seq, now.settings):
            problems.append(f"{name}: {was} -> {now}")
        if was.durables != now.durables or not now.consumers <= was.consumers:
            problems.append(f"{name} consumers: {was.consumers} -> {now.consumers}")
    return problems


@asynccontextmanager
async def bare_system(folder: Path) -> AsyncIterator[System]:
    """A server with the generated users and the three streams, and nothing else."""
    passwords = {i: found.password for i, found in ensure_credentials(folder).items()}
    auth = render_accounts(passwords)
    with NatsServer.start(folder / "js", authorization=auth, die_with_parent=True) as server:
        where = System(folder, server.url, "")
        admin = await connect(where, "admin")
        for spec in (KEYS_STREAM, CALLS_STREAM, NOTIFY_STREAM):
            await ensure_stream(admin.nc.jetstream(), spec)
        await admin.nc.close()
        yield where


def a_call(account_id: str = "acme") -> CallRecorded:
    """One call record as a gateway reports it."""
    return CallRecorded(
        account_id=account_id,
        key_id="key_x",
        ts=datetime.now(UTC),
        method="GET",
        path="/v1/ping",
        status=200,
        duration_ms=1.0,
    )
