"""The console's pages: every module here exports `routes`, mounted by app.py."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

FIRST = ("auth", "home", "key")  # the core pages; any other module follows in name order


def all_routes() -> list[BaseRoute]:
    """The routes of every page module, so a new page area needs no edit here."""
    names = [info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    ordered = [n for n in FIRST if n in names] + sorted(n for n in names if n not in FIRST)
    found: list[BaseRoute] = []
    for name in ordered:
        module = importlib.import_module(f"{__name__}.{name}")
        found.extend(module.routes)
    return found
