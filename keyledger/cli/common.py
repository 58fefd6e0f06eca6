"""What every networked CLI command shares: options, the call, exit codes and output."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from nats.errors import Error as NatsError

from contracts.connection import DATA_DIR_VAR, FILE_VAR, URL_VAR
from keyledger.client import (
    DEFAULT_TIMEOUT,
    KeyledgerClient,
    Refused,
    Unreachable,
    discover_credentials,
    discover_nats_url,
)
from keyledger.deploy.auditcopy import CopyMismatch, ensure_copies
from keyledger.deploy.permissions import DEFAULT_OPERATOR

T = TypeVar("T")

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

NatsUrlOpt = Annotated[
    str | None,
    typer.Option("--nats-url", envvar=URL_VAR, help="NATS server (default: from the data dir)"),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_VAR,
        help="where `keyledger up` keeps its files [default: ./.keyledger]",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")]
ActorOpt = Annotated[str, typer.Option("--as", help="the user acting (a super-admin)")]
HINTS = {
    "confirmation_required": "nothing changed; pass --yes to confirm",
    "superseded": "nothing changed; the key was changed meanwhile: check it (`keyledger audit`) "
    "and run the command again if it is still wanted",
    "deadline_exceeded": "nothing changed; retry (if every command says so, check this "
    "machine's clock)",
}

YesOpt = Annotated[bool, typer.Option("--yes", help="confirm: without it nothing changes")]


@dataclass(frozen=True)
class Target:
    """Where to send requests and how to print the answer."""

    nats_url: str | None
    data_dir: Path | None
    json: bool


def run_async(target: Target, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; refusals exit 1, unreachable services exit 3."""
    try:
        return asyncio.run(work())
    except Refused as exc:
        hint = HINTS.get(exc.code, "")
        fail(target, exc.code, exc.message, EXIT_REFUSED, hint)
    except Unreachable as exc:
        fail(target, "unreachable", str(exc), EXIT_UNREACHABLE)


@dataclass
class Choice:
    """The operator named by `keyledger --operator NAME` (the root callback sets it)."""

    operator: str | None = None


CHOSEN = Choice()
AUDITOR = "auditor"
OPERATOR_VAR = "KEYLEDGER_OPERATOR"


def chosen_operator(given: str | None = None) -> str:
    """--operator NAME > KEYLEDGER_OPERATOR > the operator `keyledger up` made (cli).

    KEYLEDGER_NATS_CREDENTIALS_FILE (or _USER + _PASSWORD), when set, still wins over the
    file this picks in the data dir.
    """
    return given or os.environ.get(OPERATOR_VAR) or DEFAULT_OPERATOR


async def connect(
    target: Target, identity: str = "cli", request_timeout: float = DEFAULT_TIMEOUT
) -> KeyledgerClient:
    """A client connected as `identity`: `cli` (the chosen operator) for commands, `auditor`
    for reading streams (its account's copies of them, made and caught up first)."""
    url = discover_nats_url(target.nats_url, target.data_dir)
    if identity == "cli":
        identity = chosen_operator(CHOSEN.operator)
    found = discover_credentials(target.data_dir, identity)
    if found is None and identity != DEFAULT_OPERATOR and identity != AUDITOR:
        raise Unreachable(
            f"no credentials for operator {identity!r}: add it with "
            f"`keyledger operator add {identity}` or set {FILE_VAR}"
        )
    client = await KeyledgerClient.connect(
        url, request_timeout=request_timeout, name="keyledger-cli", credentials=found
    )
    if found is not None and found.user == AUDITOR:
        try:
            await ensure_copies(client.nc)
        except (OSError, TimeoutError, NatsError, CopyMismatch) as exc:
            await client.close()
            raise Unreachable(f"cannot read the auditors' copies: {exc}") from None
    return client


def call(
    target: Target, work: Callable[[KeyledgerClient], Awaitable[T]], identity: str = "cli"
) -> T:
    """Connect, run one exchange with the service, close."""

    async def exchange() -> T:
        async with await connect(target, identity) as client:
            return await work(client)

    return run_async(target, exchange)


def fail(target: Target, code: str, message: str, exit_code: int, hint: str = "") -> NoReturn:
    """Report a failure on stderr (and as JSON on stdout with --json), then exit."""
    if target.json:
        typer.echo(json.dumps({"error": {"code": code, "message": message}}))
    typer.echo(f"error: {code}: {message}", err=True)
    if hint:
        typer.echo(f"hint: {hint}", err=True)
    raise typer.Exit(exit_code)


def show(target: Target, result: dict[str, Any], lines: Iterable[str]) -> None:
    """The result as is with --json, else the human lines."""
    if target.json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    for line in lines:
        typer.echo(line)


def labelled(pairs: Iterable[tuple[str, Any]]) -> list[str]:
    """`label:  value` lines, values aligned; pairs with a None value are left out."""
    kept = [(label, value) for label, value in pairs if value is not None]
    width = max((len(label) for label, _ in kept), default=0) + 1
    return [f"{label + ':':<{width}}  {value}" for label, value in kept]


def iso(value: str | None) -> str | None:
    """An ISO timestamp from the service shown in UTC, to the second, with a Z."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def days(seconds: int) -> str:
    count = int(seconds) // 86400
    return f"{count} day" if count == 1 else f"{count} days"
