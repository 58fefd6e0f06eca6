"""The console's pages: every module here exports `routes`, mounted by app.py.

A module may also define `async def key_panel_context(request, account_id, key) -> dict`:
the key panel (pages/key.py) merges what it returns into its template's context, so a
panel included by key/panel.html (key/_grace.html, key/_log.html, key/_admins.html) can
show what its own module fetched. `key` is the live key's dict, or None when there is none.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import ModuleType

    from starlette.requests import Request
    from starlette.routing import BaseRoute

    PanelContext = Callable[[Request, str, dict[str, Any] | None], Awaitable[dict[str, Any]]]

FIRST = ("auth", "home", "key")  # the core pages; any other module follows in name order


def modules() -> list[ModuleType]:
    names = [info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    ordered = [n for n in FIRST if n in names] + sorted(n for n in names if n not in FIRST)
    return [importlib.import_module(f"{__name__}.{name}") for name in ordered]


def all_routes() -> list[BaseRoute]:
    """The routes of every page module, so a new page area needs no edit here."""
    found: list[BaseRoute] = []
    for module in modules():
        found.extend(module.routes)
    return found


def panel_contexts() -> list[PanelContext]:
    """Every page module's `key_panel_context`, in module order."""
    return [m.key_panel_context for m in modules() if hasattr(m, "key_panel_context")]
