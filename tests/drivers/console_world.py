"""For the console's page tests: keys, calllog and notifier under their generated users."""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from contracts.connection import credentials_file, read_credentials
from keyledger.client import KeyledgerClient
from keyledger.deploy.permissions import make_credentials
from services.calllog.settings import CallLogSettings
from services.keys.settings import KeysSettings
from services.keys.vault import new_master_key
from tests.drivers.calllog import calllog_running
from tests.drivers.keys import running
from tests.drivers.notifier import running_notifier, settings_for
from tests.drivers.permissions import bare_system

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.drivers.smtp import SmtpSink
    from tests.fakes.calllog import Clock

CONSOLE = "console"  # the console's operator identity (FRONTENDS)


@dataclass(frozen=True)
class World:
    """The running services; `cli` is an operator client for setting accounts up."""

    data_dir: Path
    url: str
    cli: KeyledgerClient

    async def client(self, identity: str = CONSOLE) -> KeyledgerClient:
        found = read_credentials(credentials_file(self.data_dir, identity))
        return await KeyledgerClient.connect(self.url, credentials=found, name=identity)


@asynccontextmanager
async def world(folder: Path, clock: Clock, sink: SmtpSink) -> AsyncIterator[World]:
    """A nats-server with every generated user plus the `console` operator, and the three
    services in this process, each on its own SQLite file under `folder`."""
    make_credentials(folder, CONSOLE)
    async with bare_system(folder) as system, AsyncExitStack() as stack:

        def creds(identity: str) -> Path:
            return credentials_file(folder, identity)

        db = f"sqlite+aiosqlite:///{folder}"
        keys = KeysSettings(
            nats_url=system.url,
            db_url=f"{db}/keys.db",
            master_key=new_master_key(),
            nats_credentials_file=creds("keys"),
        )
        await stack.enter_async_context(running(keys))
        calllog = CallLogSettings(
            nats_url=system.url,
            db_url=f"{db}/calllog.db",
            calls_retention_every_seconds=3600,
            nats_credentials_file=creds("calllog"),
        )
        await stack.enter_async_context(calllog_running(calllog, clock))
        notifier = settings_for(
            system.url, f"{db}/test.db", folder, sink, nats_credentials_file=creds("notifier")
        )
        await stack.enter_async_context(running_notifier(notifier))
        cli = await KeyledgerClient.connect(
            system.url, credentials=read_credentials(creds("cli")), request_timeout=30
        )
        stack.push_async_callback(cli.close)
        yield World(folder, system.url, cli)
