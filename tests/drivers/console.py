"""The web console run in-process (its lifespan, httpx over ASGI) and a browser that signs in."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from keyledger.client import KeyledgerClient
from services.console import users
from services.console.app import Deps, create_app, credentials

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.applications import Starlette

    from services.console.settings import ConsoleSettings

BASE = "http://console.test"
CSRF = re.compile(r'name="csrf" value="([^"]*)"')
PASSWORD = "correct horse battery"


class Clock:
    """The console's clock, moved by the test (sessions, sudo, links, lockouts)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class AccountsClient(KeyledgerClient):
    """KeyledgerClient whose accounts_of is the real query once the client has it; until
    then, the super-admins of the accounts opened and changed through this client."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admins: dict[str, list[str]] = {}

    async def accounts_of(self, user: str) -> dict[str, Any]:
        real = getattr(KeyledgerClient, "accounts_of", None)
        if real is not None:
            return dict(await real(self, user))
        mine = [
            {"account_id": a, "super_admins": sorted(admins)}
            for a, admins in sorted(self.admins.items())
            if user in admins
        ]
        return {"user": user, "accounts": mine}

    async def open_account(self, account_id: str, owner: str, email: str, **kw: Any) -> Any:
        return self._remember(await super().open_account(account_id, owner, email, **kw))

    async def grant_admin(self, *args: Any, **kw: Any) -> Any:
        return self._remember(await super().grant_admin(*args, **kw))

    async def revoke_admin(self, *args: Any, **kw: Any) -> Any:
        return self._remember(await super().revoke_admin(*args, **kw))

    def _remember(self, result: dict[str, Any]) -> dict[str, Any]:
        self.admins[result["account_id"]] = list(result["super_admins"])
        return result


@dataclass
class Running:
    app: Starlette
    settings: ConsoleSettings
    clock: Clock

    @property
    def client(self) -> AccountsClient:
        found = self.app.state.console.client
        assert isinstance(found, AccountsClient)
        return found

    @property
    def engine(self) -> Any:
        return self.app.state.console.engine

    async def add_user(self, user: str, password: str = PASSWORD) -> None:
        """A person with a password, as if they had followed their setup link."""
        now = self.clock()
        await users.add(self.engine, user, f"{user}@example.com", now)
        token = await users.new_setup_token(self.engine, user, now)
        assert await users.use_setup_token(self.engine, token, password, now) == user

    def browser(self, address: str = "127.0.0.1") -> Browser:
        return Browser(self.app, address)


@asynccontextmanager
async def running(settings: ConsoleSettings, clock: Clock) -> AsyncIterator[Running]:
    """The console app with its lifespan run (migrations, its client connected)."""

    async def connect(s: ConsoleSettings) -> KeyledgerClient:
        found = credentials(s)
        return await AccountsClient.connect(s.nats_url, request_timeout=2.0, credentials=found)

    app = create_app(settings, Deps(clock=clock, client_factory=connect))
    async with app.router.lifespan_context(app):
        yield Running(app, settings, clock)


class Browser:
    """One person's browser: a cookie jar, the last CSRF token seen, no redirects followed."""

    def __init__(self, app: Starlette, address: str = "127.0.0.1") -> None:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        self.http = httpx.AsyncClient(transport=transport, base_url=BASE)
        self.csrf = ""

    async def get(self, path: str) -> httpx.Response:
        return self._seen(await self.http.get(path))

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None
    ) -> httpx.Response:
        body = {"csrf": self.csrf if csrf is None else csrf, **(data or {})}
        return self._seen(await self.http.post(path, data=body))

    async def sign_in(self, user: str, password: str = PASSWORD, code: str = "") -> httpx.Response:
        await self.get("/signin")
        done = await self.post("/signin", {"user": user, "password": password, "code": code})
        if done.status_code == 303:  # as a browser follows it: a page with the new token
            await self.get("/profile")
        return done

    async def sudo(self, password: str = PASSWORD, code: str = "") -> httpx.Response:
        await self.get("/sudo")
        return await self.post("/sudo", {"password": password, "code": code, "next": "/"})

    def session_cookie(self) -> str | None:
        return self.http.cookies.get("keyledger_console")

    def _seen(self, response: httpx.Response) -> httpx.Response:
        if found := CSRF.search(response.text):
            self.csrf = found.group(1)
        return response
