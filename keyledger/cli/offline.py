"""`keyledger export` and `keyledger verify-file`: a history to keep, verified without NATS."""

from __future__ import annotations

import json
import re
from contextlib import aclosing
from pathlib import Path
from typing import Annotated, Any

import typer
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from contracts import calllog, keys, notifier
from keyledger.audit.checkpoint_check import read_public_key
from keyledger.audit.offline import (
    CHAINED_STREAMS,
    Record,
    Verdict,
    export_line,
    parse_export_line,
    verify_stream,
)
from keyledger.audit.replay import read_stored
from keyledger.cli.common import EXIT_USAGE, DataDirOpt, JsonOpt, NatsUrlOpt, Target, call
from keyledger.cli.replay import EXIT_CHAIN_BROKEN, EXIT_CHECKPOINT, EXIT_FOREIGN
from keyledger.client import Refused, Unreachable

# every message of a stream, and one account's subject of it
_SUBJECTS = {
    "KEYS": (keys.ALL_EVENTS, keys.event_subject),
    "NOTIFY": (notifier.ALL_EVENTS, notifier.event_subject),
    # stored as calls.recorded.<partition>.<account> (records from before partitions are
    # left out of an --account export: the older form is calls.recorded.<account>)
    "CALLS": (calllog.ALL_RECORDED, calllog.account_subject),
}


def export(
    stream: Annotated[str, typer.Option("--stream", help="KEYS, NOTIFY or CALLS")] = "KEYS",
    account: Annotated[
        str | None, typer.Option("--account", help="only this account's messages")
    ] = None,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print every stored message of a stream as one JSON line each (AUDITING.md)."""
    if stream not in _SUBJECTS:
        typer.echo(f"error: usage: --stream is one of {', '.join(_SUBJECTS)}", err=True)
        raise typer.Exit(EXIT_USAGE)
    every, one = _SUBJECTS[stream]
    if account is not None and not re.fullmatch(keys.ACCOUNT_ID, account):
        typer.echo(f"error: usage: {account!r} is not an account id", err=True)
        raise typer.Exit(EXIT_USAGE)
    subject = every if account is None else one(account)
    target = Target(nats_url, data_dir, False)
    # as the auditor, from its copy: the one identity allowed to read every stream
    call(target, lambda c: _export(c.nc, stream, subject), identity="auditor")


async def _export(nc: Client, stream: str, subject: str) -> None:
    try:
        async with aclosing(read_stored(nc, stream, subject)) as stored:
            async for msg in stored:
                seq = msg.metadata.sequence.stream
                record = Record(stream, seq, msg.subject, dict(msg.headers or {}), msg.data)
                typer.echo(export_line(record))
    except NotFoundError:
        raise Refused("unknown_stream", f"there is no stream {stream}") from None
    except TimeoutError as exc:
        raise Unreachable(str(exc) or f"timed out reading stream {stream}") from None


def verify_file(
    history: Annotated[Path, typer.Argument(help="an export: one JSON line per message")],
    checkpoints: Annotated[
        Path | None, typer.Option("--checkpoints", help="`keyledger checkpoints export` output")
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="`keyledger checkpoints key` output: check signatures"),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify an exported history's hash chains (and checkpoints) without NATS; exit 1 for
    a broken chain or checkpoint, 4 for foreign messages around intact chains."""
    records = _read_lines(history, parse_export_line)
    bodies = _read_lines(checkpoints, json.loads) if checkpoints else []
    try:
        key = read_public_key(public_key.read_text()) if public_key else None
    except (OSError, ValueError) as exc:
        _usage(f"--public-key: {exc}")
    streams = list(dict.fromkeys(r.stream for r in records)) or ["KEYS"]
    if unchained := [s for s in streams if s not in CHAINED_STREAMS]:
        _usage(f"{', '.join(unchained)} has no hash chains to verify")
    verdicts = [
        verify_stream(s, [r for r in records if r.stream == s], bodies, key) for s in streams
    ]
    _report(verdicts, signed=key is not None and bool(bodies), json_out=json_out)


def _read_lines(path: Path, parse: Any) -> list[Any]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        _usage(f"cannot read {path}: {exc}")
    parsed = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            parsed.append(parse(line))
        except ValueError as exc:
            _usage(f"{path} line {number} is not an export line: {exc}")
    return parsed


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _usage(message: str) -> Any:
    typer.echo(f"error: usage: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _report(verdicts: list[Verdict], *, signed: bool, json_out: bool) -> None:
    """The same verdicts and exit codes as `keyledger replay --verify`."""
    documents = []
    for verdict in verdicts:
        checker = verdict.checker
        for finding in checker.findings:
            typer.echo(f"foreign message: {verdict.stream} {finding}", err=True)
        documents.append(
            {
                "stream": verdict.stream,
                "events": checker.events,
                "accounts": checker.accounts,
                "checkpoints": verdict.checkpoints,
                "signatures_checked": signed,
                "ok": verdict.problem is None and not checker.findings,
                "error": verdict.code,
                "problem": verdict.problem.as_dict() if verdict.problem else None,
                "findings": [f.as_dict() for f in checker.findings],
            }
        )
        if verdict.problem is not None:
            typer.echo(f"error: {verdict.code}: {verdict.stream} {verdict.problem}", err=True)
        elif not json_out:
            typer.echo(
                f"{verdict.stream}: verified {_count(checker.events, 'event')} in "
                f"{_count(checker.accounts, 'account')} and "
                f"{_count(verdict.checkpoints, 'checkpoint')}"
                f"{'' if signed or not verdict.checkpoints else ' (signatures not checked)'}: OK"
            )
    if json_out:
        typer.echo(json.dumps({"streams": documents}, ensure_ascii=False))
    if any(v.code == "chain_broken" for v in verdicts):
        raise typer.Exit(EXIT_CHAIN_BROKEN)
    if any(v.problem is not None for v in verdicts):
        raise typer.Exit(EXIT_CHECKPOINT)
    if any(v.checker.findings for v in verdicts):
        raise typer.Exit(EXIT_FOREIGN)
