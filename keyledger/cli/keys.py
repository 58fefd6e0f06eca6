"""CLI commands for accounts, super-admins and the account's API key."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from keyledger.cli.calls import reveal_with_last_use
from keyledger.cli.common import (
    EXIT_REFUSED,
    ActorOpt,
    DataDirOpt,
    JsonOpt,
    NatsUrlOpt,
    Target,
    YesOpt,
    call,
    days,
    iso,
    labelled,
    show,
)
from keyledger.cli.times import grace_option, parse_grace

account_app = typer.Typer(help="Open accounts.", no_args_is_help=True)
admin_app = typer.Typer(help="Grant and revoke super-admins.", no_args_is_help=True)
key_app = typer.Typer(help="Generate, show, rotate, deactivate and verify API keys.")

AccountArg = Annotated[str, typer.Argument(help="account id")]
UserArg = Annotated[str, typer.Argument(help="user id")]
EmailOpt = Annotated[str, typer.Option("--email", help="the user's email address")]
GraceOpt = Annotated[
    str | None,
    typer.Option(
        "--grace",
        callback=grace_option,
        metavar="DURATION",
        help="keep the old key working this long (30s, 15m, 2h, 7d, 2w; max 30d)",
    ),
]

KeyIdOpt = Annotated[
    str | None,
    typer.Option(
        "--key-id",
        help="act only if this is still the live key (default: the live key read just before)",
    ),
]


async def _expected_key(client: Any, account: str, key_id: str | None) -> str:
    """The key the person means: the one named, else the one live right now. The command
    then names it, so a key another rotate has replaced in the meantime is refused as
    superseded instead of being acted on (and no replaced key is ever printed)."""
    if key_id is not None:
        return key_id
    return str((await client.live_key(account))["key_id"])


def _account_lines(result: dict[str, Any]) -> list[str]:
    return labelled(
        [
            ("account", result["account_id"]),
            ("super-admins", ", ".join(result["super_admins"])),
        ]
    )


def _key_lines(result: dict[str, Any]) -> list[str]:
    previous = result.get("previous_key_id")
    grace = iso(result.get("previous_key_grace_until"))
    return labelled(
        [
            ("key", result["key"]),
            ("key id", result["key_id"]),
            ("account", result["account_id"]),
            ("created", iso(result["created_at"])),
            ("age", days(result["age_seconds"])),
            ("recommended rotation", iso(result["recommended_rotation_at"])),
            ("last used", result.get("last_used")),  # key show only
            ("previous key", previous),
            (
                "previous key works until",
                (grace or "no longer (stopped at once)") if previous else None,
            ),
        ]
    )


@account_app.command("open")
def account_open(
    account: AccountArg,
    owner: Annotated[str, typer.Option("--owner", help="the first super-admin")],
    email: EmailOpt,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Open an account; its owner becomes its first super-admin."""
    target = Target(nats_url, data_dir, json_out)
    result = call(target, lambda c: c.open_account(account, owner, email))
    show(target, result, _account_lines(result))


@admin_app.command("grant")
def admin_grant(
    account: AccountArg,
    user: UserArg,
    email: EmailOpt,
    actor: ActorOpt,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Make USER a super-admin of ACCOUNT."""
    target = Target(nats_url, data_dir, json_out)
    result = call(target, lambda c: c.grant_admin(account, actor, user, email))
    show(target, result, _account_lines(result))


@admin_app.command("revoke")
def admin_revoke(
    account: AccountArg,
    user: UserArg,
    actor: ActorOpt,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Take super-admin rights on ACCOUNT away from USER."""
    target = Target(nats_url, data_dir, json_out)
    result = call(target, lambda c: c.revoke_admin(account, actor, user))
    show(target, result, _account_lines(result))


@key_app.command("generate")
def key_generate(
    account: AccountArg,
    actor: ActorOpt,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Generate the account's API key (when it has none) and print it."""
    target = Target(nats_url, data_dir, json_out)
    result = call(target, lambda c: c.generate(account, actor))
    show(target, result, _key_lines(result))


@key_app.command("show")
def key_show(
    account: AccountArg,
    actor: ActorOpt,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Reveal the current key, its age, rotation date and last use (recorded as a view)."""
    target = Target(nats_url, data_dir, json_out)
    result = call(target, lambda c: reveal_with_last_use(c, account, actor))
    show(target, result, _key_lines(result))


@key_app.command("rotate")
def key_rotate(
    account: AccountArg,
    actor: ActorOpt,
    yes: YesOpt = False,
    grace: GraceOpt = None,
    key_id: KeyIdOpt = None,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Replace the key with a new one in one step; the old key stops (after --grace)."""
    target = Target(nats_url, data_dir, json_out)
    seconds = parse_grace(grace) if grace else 0

    async def rotate(client: Any) -> dict[str, Any]:
        expected = await _expected_key(client, account, key_id)
        return dict(
            await client.rotate(
                account, actor, confirm=yes, grace_seconds=seconds, expected_key_id=expected
            )
        )

    result = call(target, rotate)
    show(target, result, _key_lines(result))


@key_app.command("deactivate")
def key_deactivate(
    account: AccountArg,
    actor: ActorOpt,
    yes: YesOpt = False,
    key_id: KeyIdOpt = None,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Stop the key working; no new key is created."""
    target = Target(nats_url, data_dir, json_out)

    async def deactivate(client: Any) -> dict[str, Any]:
        expected = await _expected_key(client, account, key_id)
        return dict(await client.deactivate(account, actor, confirm=yes, expected_key_id=expected))

    result = call(target, deactivate)
    lines = labelled(
        [
            ("deactivated", result["key_id"]),
            ("account", result["account_id"]),
            ("at", iso(result["deactivated_at"])),
        ]
    )
    show(target, result, lines)


@key_app.command("verify")
def key_verify(
    key: Annotated[str, typer.Argument(help="the API key to check; - reads it from stdin")],
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a key as a gateway would: exit 0 if valid, 1 if not."""
    target = Target(nats_url, data_dir, json_out)
    if key == "-":  # keeps the key out of shell history and the process list
        key = sys.stdin.readline().strip()
    result = call(target, lambda c: c.verify(key))
    if result.get("valid"):
        show(target, result, [f"valid: account {result['account_id']}, key {result['key_id']}"])
        return
    if target.json:
        show(target, result, [])
    typer.echo(f"error: invalid_key: {result.get('reason') or 'unknown'}", err=True)
    raise typer.Exit(EXIT_REFUSED)
