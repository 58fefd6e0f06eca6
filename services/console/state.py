"""What every request handler reaches through the app: settings, database, clock, client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, cast

from services.console.domain import Limits

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from jinja2 import Environment
    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.requests import HTTPConnection

    from keyledger.client import KeyledgerClient
    from services.console.settings import ConsoleSettings


@dataclass
class Console:
    """app.state.console; `client` is set once the app has started (its lifespan)."""

    settings: ConsoleSettings
    engine: AsyncEngine
    clock: Callable[[], datetime]
    templates: Environment
    client: KeyledgerClient | None = None
    limits: Limits = field(init=False)

    def __post_init__(self) -> None:
        self.limits = limits_of(self.settings)


def limits_of(settings: ConsoleSettings) -> Limits:
    return Limits(
        session_idle=timedelta(seconds=settings.session_idle_seconds),
        session_absolute=timedelta(seconds=settings.session_absolute_seconds),
        sudo=timedelta(seconds=settings.sudo_seconds),
        setup_link=timedelta(seconds=settings.setup_link_seconds),
        max_failed_signins=settings.max_failed_signins,
        lockout=timedelta(seconds=settings.signin_lockout_seconds),
    )


def console(conn: HTTPConnection) -> Console:
    return cast("Console", conn.app.state.console)
