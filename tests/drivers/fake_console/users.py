"""The stand-in's setup_link_for_new_user: the interface services.console.users implements."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


def setup_link_for_new_user(
    db_url: str, user: str, email: str, console_url: str, now: datetime
) -> str:
    if not now.tzinfo:
        raise ValueError("now must be aware")
    return f"{console_url}/setup/token-for-{user}-{email}-{db_url.rsplit('/', 1)[-1]}"
