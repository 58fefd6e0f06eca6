"""The notifier run in-process or as a process, its settings for tests, and calls to it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nats.errors
from faststream import TestApp

from contracts.calendar import add_months
from contracts.keys import KEYS_STREAM
from keyledger.local.server import log_tail
from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from datetime import datetime

    from nats.aio.client import Client

    from tests.drivers.smtp import SmtpSink

REPO = Path(__file__).resolve().parents[2]
FACTORY = "services.notifier.app:create_app"


def notifier_db(db_url: str) -> str:
    """Its own SQLite file beside the keys service's; on PostgreSQL the tables share one db."""
    return db_url.replace("/test.db", "/notifier.db") if db_url.startswith("sqlite") else db_url


def settings_for(
    nats_url: str, db_url: str, data_dir: Path, sink: SmtpSink | None, **overrides: Any
) -> NotifierSettings:
    """Settings for a test: sweeps on demand, time travel allowed, quick retries."""
    smtp = {"smtp_host": "127.0.0.1", "smtp_port": sink.port} if sink else {}
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "db_url": notifier_db(db_url),
        "data_dir": data_dir,
        "sweep_interval_seconds": 3600,  # tests sweep on demand
        "allow_time_travel": True,
        "smtp_timeout": 5,
        "retry_base_seconds": 0.2,
        "retry_max_seconds": 1,
        **smtp,
    }
    return NotifierSettings(**(values | overrides))


@asynccontextmanager
async def running_notifier(settings: NotifierSettings) -> AsyncIterator[None]:
    """One notifier replica, started and stopped the way `faststream run` does it."""
    async with TestApp(create_app(settings)):
        yield


class Notify:
    """The notifier's subjects as plain calls returning the reply's result (or error)."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc

    async def ask(self, subject: str, body: dict[str, Any] | bytes, wait: float = 10) -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = json.loads((await self.nc.request(subject, data, timeout=wait)).data)
        return reply["result"] if reply["ok"] else reply["error"]

    async def caught_up(self, seconds: float = 10.0) -> None:
        """Until the notifier's projection has applied everything on KEYS."""
        last = (await self.nc.jetstream().stream_info(KEYS_STREAM.name)).state.last_seq
        for _ in range(int(seconds / 0.02)):
            health = await self.ask("notify.query.health", {})
            if health["stream_seq"] >= last:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"projection stuck at {health['stream_seq']} < {last}")

    async def sweep(self, as_of: datetime | None = None) -> dict[str, Any]:
        await self.caught_up()
        body = {"as_of": as_of.isoformat()} if as_of else {}
        return dict(await self.ask("notify.cmd.sweep", body, wait=30))

    async def sweep_months(self, since: datetime, months: int) -> dict[str, Any]:
        return await self.sweep(add_months(since, months))

    async def sidebar(self, user: str, **options: Any) -> list[dict[str, Any]]:
        page = await self.ask("notify.query.sidebar", {"user": user, **options})
        return list(page["items"])

    async def reminders(self, account: str, as_of: datetime | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"account_id": account}
        if as_of:
            body["as_of"] = as_of.isoformat()
        return dict(await self.ask("notify.query.reminders", body))


def notifier_process(settings: NotifierSettings, log_file: Path) -> subprocess.Popen[bytes]:
    """`faststream run` of the notifier, as `keyledger up` runs it, configured by env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")}
    for name, value in settings.model_dump(exclude_none=True).items():
        if name == "smtp_password":
            continue
        env[f"KEYLEDGER_{name.upper()}"] = "1" if value is True else str(value)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "faststream"), "run", FACTORY, "--factory"],
            cwd=REPO,
            env=env | {"PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def wait_serving(nc: Client, proc: subprocess.Popen[bytes], log_file: Path) -> None:
    """Until some notifier answers its health subject; fails if the process died."""
    for _ in range(1500):
        if proc.poll() is not None:
            raise AssertionError(f"notifier exited:\n{log_tail(log_file)}")
        try:
            await nc.request("notify.query.health", b"{}", timeout=0.5)
            return
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            await asyncio.sleep(0.02)
    raise AssertionError(f"notifier never answered:\n{log_tail(log_file)}")
