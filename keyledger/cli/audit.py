"""The `keyledger audit` command: who did what to an account's key, newest first."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from keyledger.cli.common import DataDirOpt, JsonOpt, NatsUrlOpt, Target, call, iso, show

AUDIT_PAGE_MAX = 500


def audit(
    account: Annotated[str, typer.Argument(help="account id")],
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, max=AUDIT_PAGE_MAX, help="entries [default: 50]"),
    ] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="every entry, page by page")] = False,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Who created, viewed, rotated or deactivated the account's key, newest first."""
    target = Target(nats_url, data_dir, json_out)
    size = limit or (AUDIT_PAGE_MAX if all_pages else 50)

    async def pages(client: Any) -> dict[str, Any]:
        page = await client.audit(account, size)
        items = list(page["items"])
        while all_pages and page.get("next_cursor") is not None:
            page = await client.audit(account, size, page["next_cursor"])
            items += page["items"]
        return {**page, "items": items}

    result = call(target, pages)
    show(target, result, [_audit_line(item) for item in result["items"]] or ["(no entries)"])


def _audit_line(item: dict[str, Any]) -> str:
    details = [
        item.get("key_id") or "",
        f"({item['key_hint']})" if item.get("key_hint") else "",
        f"user {item['user']}" if item.get("user") else "",
    ]
    head = f"{iso(item['occurred_at'])}  #{item['sequence']:<4} {_who(item):<16}"
    return f"{head} {item['action']:<15} {' '.join(d for d in details if d)}".rstrip()


def _who(item: dict[str, Any]) -> str:
    """ "alice via bob": the actor, and the frontend identity that vouched for the command."""
    via = item.get("via")
    if not isinstance(via, dict) or not via.get("account"):
        return str(item["actor"])
    return f"{item['actor']} via {via.get('user') or via['account']}"
