"""CLI commands for the notifier: the sidebar inbox, reminder status and on-demand sweeps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from keyledger.cli.common import (
    EXIT_REFUSED,
    DataDirOpt,
    JsonOpt,
    NatsUrlOpt,
    Target,
    days,
    fail,
    iso,
    labelled,
    show,
)
from keyledger.cli.groups import DefaultCommandGroup
from keyledger.cli.notify_support import AsOfOpt, ask

SWEEP_TIMEOUT = 120.0  # a sweep delivers before it answers: give it time


class _Notifications(DefaultCommandGroup):
    default_command, default_usage = "list", "USER [OPTIONS]"


class _Reminders(DefaultCommandGroup):
    default_command, default_usage = "show", "ACCOUNT [OPTIONS]"


notifications_app = typer.Typer(
    cls=_Notifications,
    no_args_is_help=True,
    help="The sidebar inbox: `notifications USER`, `notifications read USER ID...`.",
)
reminders_app = typer.Typer(
    cls=_Reminders,
    no_args_is_help=True,
    help="Rotation reminders: `reminders ACCOUNT`, `reminders sweep`.",
)


@notifications_app.command("list")
def notifications_list(
    user: Annotated[str, typer.Argument(help="whose inbox")],
    account: Annotated[str | None, typer.Option("--account", help="only this account")] = None,
    unread: Annotated[bool, typer.Option("--unread", help="only unread entries")] = False,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """USER's sidebar notifications, newest first."""
    target = Target(nats_url, data_dir, json_out)
    result = ask(target, lambda n: n.sidebar(user, account_id=account, unread_only=unread))
    lines = []
    for item in result["items"]:
        state = "read" if item.get("read_at") else "unread"
        lines += [f"{iso(item['created_at'])}  {state:<6}  {item['title']}"]
        lines += [f"  id  {item['id']}", f"  {item['message']}"]
    show(target, result, lines or ["(no notifications)"])


@notifications_app.command("read")
def notifications_read(
    user: Annotated[str, typer.Argument(help="whose inbox")],
    ids: Annotated[list[str], typer.Argument(help="notification ids, as listed")],
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Mark notifications read; exit 1 if an id is not one of USER's."""
    target = Target(nats_url, data_dir, json_out)
    result = ask(target, lambda n: n.mark_read(user, ids))
    if result["unknown"]:
        unknown = ", ".join(result["unknown"])
        fail(target, "unknown_notification", f"not {user}'s notifications: {unknown}", EXIT_REFUSED)
    show(target, result, [f"marked {len(result['marked'])} read"])


@reminders_app.command("show")
def reminders_show(
    account: Annotated[str, typer.Argument(help="account id")],
    as_of: AsOfOpt = None,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The key's age, the reminders recorded for ACCOUNT and the ones due next."""
    target = Target(nats_url, data_dir, json_out)
    result = ask(target, lambda n: n.reminders(account, as_of=as_of))
    show(target, result, _status_lines(result))


def _key_pairs(key: dict[str, Any] | None) -> list[tuple[str, Any]]:
    if key is None:
        return [("key", "none active")]
    return [
        ("key", f"{key['key_id']} ({key['hint']}), created by {key['last_creator']}"),
        ("in use since", iso(key["in_use_since"])),
        ("age", f"{days(key['age_days'] * 86400)} ({key['age_months']} months)"),
        ("recommended rotation", iso(key["recommended_rotation_at"])),
    ]


def _status_lines(result: dict[str, Any]) -> list[str]:
    head = [("account", result["account_id"]), ("as of", iso(result["as_of"]))]
    lines = labelled(head + _key_pairs(result.get("key")))
    lines.append("reminders:")
    who = [
        f"{r['recipient']} <{r['email']}>" if r["channel"] == "email" else r["recipient"]
        for r in result["reminders"]
    ]
    width = max(map(len, who), default=0)
    for r, name in zip(result["reminders"], who, strict=True):
        row = f"  {r['milestone_months']:>3} months  {r['channel']:<7}  {name:<{width}}"
        lines.append(f"{row}  {_state(r)}")
    if not result["reminders"]:
        lines.append("  (none yet)")
    if result["upcoming"]:
        lines.append("next:")
    for u in result["upcoming"]:
        channels = "+".join(u["channels"])
        due = datetime.fromisoformat(u["due_at"]) <= datetime.fromisoformat(result["as_of"])
        overdue = "  (due: the next sweep sends it)" if due else ""
        lines.append(
            f"  {iso(u['due_at'])}  {u['milestone_months']:>3} months  {channels:<13}  "
            f"{', '.join(u['recipients'])}{overdue}"
        )
    return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _state(r: dict[str, Any]) -> str:
    if r["state"] == "delivered":
        return f"delivered {iso(r['delivered_at'])}"
    if r["state"] == "claimed" and r["attempts"]:
        failed = f"{r['attempts']} failed: {r['last_error']}"
        return f"retrying at {iso(r['next_attempt_at'])} ({failed})"
    if r["state"] == "failed":
        return f"FAILED after {r['attempts']} attempts: {r['last_error']}"
    return "cancelled (key replaced)" if r["state"] == "cancelled" else "being delivered"


@reminders_app.command("sweep")
def reminders_sweep(
    as_of: AsOfOpt = None,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a sweep now; a future --as-of needs the notifier's time travel (up --dev)."""
    target = Target(nats_url, data_dir, json_out)
    result = ask(target, lambda n: n.sweep(as_of=as_of), timeout=SWEEP_TIMEOUT)
    show(
        target,
        result,
        [
            f"swept as of {iso(result['as_of'])}: {_count(result['due_keys'], 'key')} due, "
            f"{_count(result['claimed'], 'reminder')} claimed, {result['delivered']} delivered",
            f"  retrying {result['retrying']}, failed {result['failed']}, "
            f"cancelled {result['cancelled']}, waiting {result['waiting']}, "
            f"events published {result['published']}",
        ],
    )
