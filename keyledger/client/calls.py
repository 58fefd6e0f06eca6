"""Typed requests to the call log: an account's calls, their stats, a key's last use and callers."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

from contracts.calllog import query_subject

if TYPE_CHECKING:
    from datetime import datetime

    from keyledger.client.notifier import Requester


class CallsClient:
    """`client.calls`; bodies carry the fields of contracts.calllog's ListCalls,
    CallStatsQuery, LastUsedQuery and ClientsQuery, unset options left out (the service's
    defaults).

    Replies come back as the service sent them (dicts shaped like CallPage, CallStats,
    LastUsed, KeyClients): the CLI prints them unchanged with --json.
    """

    def __init__(self, request: Requester) -> None:
        self._request = request

    async def health(self) -> dict[str, Any]:
        return await self._request(query_subject("health"), {})

    async def list(
        self,
        account_id: str,
        *,
        limit: int = 50,
        key_id: str | None = None,
        since: str | None = None,
        status: str | None = None,
        path_prefix: str | None = None,
        method: str | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """since: ISO 8601 with an offset; status: 404 or 4xx; method: upper case."""
        filters = {"key_id": key_id, "since": since, "status": status, "path_prefix": path_prefix}
        filters |= {"method": method, "cursor": cursor}
        body = {"account_id": account_id, "limit": limit} | {k: v for k, v in filters.items() if v}
        return await self._request(query_subject("list"), body)

    async def stats(
        self, account_id: str, *, by: str = "hour", key_id: str | None = None
    ) -> dict[str, Any]:
        """by: hour or day."""
        body = {"account_id": account_id, "by": by} | ({"key_id": key_id} if key_id else {})
        return await self._request(query_subject("stats"), body)

    async def last_used(self, account_id: str, key_id: str) -> dict[str, Any]:
        return await self._request(
            query_subject("last_used"), {"account_id": account_id, "key_id": key_id}
        )

    async def clients(self, account_id: str, key_id: str, since: datetime) -> dict[str, Any]:
        """Who called with the key since `since` (aware; clamped to the last 7 days): the
        calls, the last one, and per caller address and user agent, most recent first."""
        moment = since.astimezone(UTC).isoformat().replace("+00:00", "Z")
        body = {"account_id": account_id, "key_id": key_id, "since": moment}
        return await self._request(query_subject("clients"), body)
