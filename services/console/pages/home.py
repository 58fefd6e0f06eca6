"""`/`: the first account the person administers, or an empty state."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
