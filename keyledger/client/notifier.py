"""Typed requests to the notifier: the sidebar inbox, mark-read, reminder status, sweeps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from contracts.notifier import command_subject, query_subject

Requester = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class NotifierClient:
    """`client.notifier`; bodies carry the fields of contracts.notifier's SidebarQuery,
    MarkRead, RemindersQuery and Sweep, unset options left out (the service's defaults).

    Replies come back as the service sent them (dicts shaped like SidebarPage,
    MarkReadResult, RemindersResult, SweepResult): the CLI prints them unchanged with --json.
    """

    def __init__(self, request: Requester) -> None:
        self._request = request

    async def health(self) -> dict[str, Any]:
        return await self._request(query_subject("health"), {})

    async def sidebar(
        self, user: str, *, account_id: str | None = None, unread_only: bool = False
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"user": user, "unread_only": unread_only}
        if account_id:
            body["account_id"] = account_id
        return await self._request(query_subject("sidebar"), body)

    async def mark_read(self, user: str, ids: list[str]) -> dict[str, Any]:
        return await self._request(command_subject("mark_read"), {"user": user, "ids": ids})

    async def reminders(self, account_id: str, *, as_of: str | None = None) -> dict[str, Any]:
        """as_of: an ISO 8601 date or date-time (the CLI's --as-of sends UTC)."""
        body = {"account_id": account_id} | ({"as_of": as_of} if as_of else {})
        return await self._request(query_subject("reminders"), body)

    async def sweep(self, *, as_of: str | None = None) -> dict[str, Any]:
        """A sweep delivers before it answers: give the client a long request timeout."""
        return await self._request(command_subject("sweep"), {"as_of": as_of} if as_of else {})
