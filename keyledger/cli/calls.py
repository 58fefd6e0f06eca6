"""CLI commands for the call log: an account's API calls of the last 7 days, and their stats."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

import typer

from contracts.calllog import MAX_PAGE, RETENTION_SECONDS, STATUS_FILTER
from keyledger.cli.common import (
    DataDirOpt,
    JsonOpt,
    NatsUrlOpt,
    Target,
    call,
    iso,
    labelled,
    show,
)
from keyledger.cli.groups import DefaultCommandGroup
from keyledger.cli.times import since_option
from keyledger.client import KeyledgerClient, Refused, Unreachable

LAST_USED_TIMEOUT = 2.0


class ListByDefault(DefaultCommandGroup):
    """`calls ACCOUNT ...` means `calls list ACCOUNT ...`; `calls stats ACCOUNT` is stats.
    (An account literally named `stats` is listed with `calls list stats`.)"""

    default_command = "list"


calls_app = typer.Typer(
    cls=ListByDefault,
    no_args_is_help=True,
    help="API calls made with an account's key in the last 7 days: "
    "`keyledger calls ACCOUNT` lists them, `keyledger calls stats ACCOUNT` sums them up.",
)

AccountArg = Annotated[str, typer.Argument(help="account id")]
KeyOpt = Annotated[str | None, typer.Option("--key", help="only calls made with this key id")]


def _status(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(STATUS_FILTER, value.lower()):
        raise typer.BadParameter("use a status (404) or a status class (4xx)")
    return value.lower() if value else None


def _by(value: str) -> str:
    if value not in ("hour", "day"):
        raise typer.BadParameter("use hour or day")
    return value


def _path(value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise typer.BadParameter("a path prefix starts with /, e.g. /v1/contacts")
    return value


@calls_app.command("list")
def calls_list(
    account: AccountArg,
    key: KeyOpt = None,
    since: Annotated[
        str | None,
        typer.Option("--since", callback=since_option, help="from this long ago (24h, 7d) or time"),
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", callback=_status, help="404, or a class: 4xx")
    ] = None,
    path: Annotated[
        str | None, typer.Option("--path", callback=_path, help="path prefix, e.g. /v1/contacts")
    ] = None,
    method: Annotated[str | None, typer.Option("--method", help="GET, POST, ...")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_PAGE, help="calls")] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="the next page")] = None,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The account's API calls, newest first (only the last 7 days are kept)."""
    target = Target(nats_url, data_dir, json_out)
    verb = method.upper() if method else None
    page = call(
        target,
        lambda c: c.calls.list(
            account,
            limit=limit,
            key_id=key,
            since=since,
            status=status,
            path_prefix=path,
            method=verb,
            cursor=cursor,
        ),
    )
    lines = [_call_line(item) for item in page["items"]] or ["(no calls in this window)"]
    show(target, page, lines)
    if page.get("next_cursor") and not target.json:
        typer.echo(f"more: add --cursor {page['next_cursor']}", err=True)


def _call_line(item: dict[str, Any]) -> str:
    duration = f"{item['duration_ms']:.1f} ms"
    who = " ".join(x for x in (item.get("caller_ip"), item.get("user_agent")) if x)
    head = f"{iso(item['ts'])}  {item['method']:<6} {item['status']:<4} {duration:>10}"
    return f"{head}  {item['path']:<24} {item['key_id']}  {who}".rstrip()


@calls_app.command("stats")
def calls_stats(
    account: AccountArg,
    by: Annotated[str, typer.Option("--by", callback=_by, help="hour or day")] = "hour",
    key: KeyOpt = None,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Calls per hour or day by status class, error rate, top paths, last use of each key."""
    target = Target(nats_url, data_dir, json_out)
    stats = call(target, lambda c: c.calls.stats(account, by=by, key_id=key))
    show(target, stats, _stats_lines(stats))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items() if n) or "none"


def _stats_lines(stats: dict[str, Any]) -> list[str]:
    lines = labelled(
        [
            ("account", stats["account_id"]),
            ("key", stats.get("key_id")),
            ("window", f"{iso(stats['since'])} .. {iso(stats['until'])} (last 7 days)"),
            ("calls", stats["total"]),
            ("by status", _counts(stats["by_class"])),
            ("error rate", f"{stats['error_rate']:.1%} (4xx and 5xx)"),
        ]
    )
    lines += ["keys:"] + [
        f"  {k['key_id']}  {k['calls']} calls, last used {iso(k['last_used_at'])}"
        for k in stats["keys"]
    ]
    lines += ["top paths:"] + [f"  {p['calls']:>7}  {p['path']}" for p in stats["top_paths"]]
    busy = [b for b in stats["buckets"] if any(b["counts"].values())]
    lines += [f"per {stats['by']} (only those with calls):"] + [
        f"  {iso(b['start'])}  {_counts(b['counts'])}" for b in busy
    ]
    return lines


async def last_use(client: KeyledgerClient, key: dict[str, Any]) -> tuple[str | None, str]:
    """(last_used_at, what to show) for `key show`; never fails when the call log is away."""
    try:
        found = await asyncio.wait_for(
            client.calls.last_used(key["account_id"], key["key_id"]), LAST_USED_TIMEOUT
        )
    except (Refused, Unreachable, TimeoutError):
        return None, "unknown (the call log is not reachable)"
    if found.get("last_used_at"):
        return found["last_used_at"], iso(found["last_used_at"]) or ""
    fresh = int(key.get("age_seconds", 0)) < RETENTION_SECONDS
    return None, "never" if fresh else "not in the last 7 days"


async def reveal_with_last_use(client: KeyledgerClient, account: str, actor: str) -> dict[str, Any]:
    """Reveal the key (recorded as a view) and add when it was last used."""
    result = await client.reveal(account, actor)
    result["last_used_at"], result["last_used"] = await last_use(client, result)
    return result
