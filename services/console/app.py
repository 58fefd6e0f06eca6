"""The console's Starlette app: pages, static files, error pages, start-up and shut-down."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from contracts.connection import Credentials, given_credentials
from keyledger.client import KeyledgerClient, Unreachable, discover_credentials
from services.common.migrate import upgrade_to_head
from services.common.sql import make_engine, use_wal
from services.console import pages
from services.console.migrations import MIGRATIONS
from services.console.pages.shown import utc
from services.console.security import SecurityHeaders
from services.console.settings import ConsoleSettings
from services.console.state import Console, console
from services.console.web import CsrfRefused, Forbidden, SignInRequired

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp

HERE = Path(__file__).parent


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    """What tests replace: the clock, the engine, how the NATS client is made."""

    clock: Callable[[], datetime] = field(default=_now)
    engine: AsyncEngine | None = None
    client_factory: Callable[[ConsoleSettings], Awaitable[KeyledgerClient]] | None = None


def credentials(settings: ConsoleSettings) -> Credentials | None:
    """The console's own FRONTENDS identity: the settings' user + password or file, else the
    `console` operator's file in the data dir (as `keyledger up` writes it)."""
    password = settings.nats_password.get_secret_value() if settings.nats_password else None
    found = given_credentials(settings.nats_credentials_file, settings.nats_user, password)
    return found if found is not None else discover_credentials(None, settings.operator)


async def connect_client(settings: ConsoleSettings) -> KeyledgerClient:
    return await KeyledgerClient.connect(
        settings.nats_url, name="keyledger-console", credentials=credentials(settings)
    )


class ConsoleApp(Starlette):
    """Starlette with the security headers outside everything, error pages included."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def create_app(settings: ConsoleSettings | None = None, deps: Deps | None = None) -> Starlette:
    settings = settings or ConsoleSettings()
    deps = deps or Deps()
    engine = deps.engine or make_engine(settings.db_url)
    use_wal(engine)
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
    )
    templates.filters["utc"] = utc  # every time a person reads: `2026-05-01 12:03:04 UTC`
    state = Console(settings, engine, deps.clock, templates)
    factory = deps.client_factory or connect_client

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await upgrade_to_head(engine, MIGRATIONS)
        state.client = await factory(settings)
        try:
            yield
        finally:
            await state.client.close()
            if deps.engine is None:
                await engine.dispose()

    app = ConsoleApp(
        routes=[
            *pages.all_routes(),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        exception_handlers={
            SignInRequired: _to_signin,
            Forbidden: _forbidden,
            CsrfRefused: _csrf_refused,
            Unreachable: _unreachable,
        },
        lifespan=lifespan,
    )
    app.state.console = state
    return app


async def _to_signin(request: Request, _: Exception) -> Response:
    from urllib.parse import quote

    return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)


def _error_page(request: Request, title: str, message: str, status: int) -> Response:
    page = console(request).templates.get_template("error.html")
    html = page.render(request=request, title=title, message=message, person=None, csrf="")
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


async def _forbidden(request: Request, _: Exception) -> Response:
    return _error_page(request, "Not allowed", "You are not a super-admin of this account.", 403)


async def _csrf_refused(request: Request, _: Exception) -> Response:
    message = (
        "This form was stale or not sent by the console; nothing was changed. "
        "Reload the page and try again."
    )
    return _error_page(request, "Form refused", message, 403)


async def _unreachable(request: Request, exc: Exception) -> Response:
    return _error_page(request, "Service unavailable", str(exc), 503)


def factory() -> Starlette:
    """For uvicorn's --factory: settings from the environment."""
    return create_app(ConsoleSettings(), Deps())
