"""The console app in-process for page tests: started, with people signed in by cookie."""

from __future__ import annotations

import re
import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

from services.common.sql import make_engine
from services.console import sessions, users
from services.console.app import Deps, create_app
from services.console.settings import ConsoleSettings
from services.console.store import sessions as sessions_table

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.applications import Starlette

    from keyledger.client import KeyledgerClient
    from tests.drivers.console_world import World

BASE = "http://console.test"


@dataclass(frozen=True)
class Console:
    app: Starlette
    engine: AsyncEngine
    opened: list[httpx.AsyncClient] = field(default_factory=list)

    async def browser(self, user: str) -> Browser:
        """An HTTP client with `user` signed in (the session row made as sign-in makes it)."""
        await users.add(self.engine, user, f"{user}@x.io", datetime.now(UTC))
        raw, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), datetime.now(UTC)
        async with self.engine.begin() as db:
            await db.execute(
                sessions_table.insert().values(
                    id_hash=sessions.hashed(raw),
                    user=user,
                    csrf_token=csrf,
                    created_at=now,
                    last_seen_at=now,
                    sudo_until=None,
                )
            )
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=BASE,
            cookies={sessions.COOKIE: raw},
        )
        self.opened.append(http)
        return Browser(http, csrf)


@dataclass(frozen=True)
class Browser:
    http: httpx.AsyncClient
    csrf: str

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def post(self, path: str, data: dict[str, str], *, csrf: bool = True) -> httpx.Response:
        return await self.http.post(path, data=data | ({"csrf": self.csrf} if csrf else {}))

    async def bell(self) -> int:
        """The unread count the layout shows (0 when it shows none)."""
        page = (await self.get("/notifications")).text
        found = re.search(r'<span class="count">(\d+)</span>', page)
        return int(found.group(1)) if found else 0


@asynccontextmanager
async def console_running(world: World, folder: Path) -> AsyncIterator[Console]:
    """create_app on its own SQLite file, its client the `console` operator, started."""
    engine = make_engine(f"sqlite+aiosqlite:///{folder}/console.db")

    async def client(_: ConsoleSettings) -> KeyledgerClient:
        return await world.client()

    settings = ConsoleSettings(nats_url=world.url, db_url=f"sqlite+aiosqlite:///{folder}/c.db")
    app = create_app(settings, Deps(engine=engine, client_factory=client))
    try:
        async with app.router.lifespan_context(app):
            running = Console(app, engine)
            yield running
            for http in running.opened:
                await http.aclose()
    finally:
        await engine.dispose()
