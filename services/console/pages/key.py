"""The key panel at /accounts/{account_id}/api-key and its POST actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
