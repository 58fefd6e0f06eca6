"""Sign-in, sign-out, setup links, sudo and the profile (TOTP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
