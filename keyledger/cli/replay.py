"""`keyledger replay`: print the history in stream order while checking its hash chains."""

from __future__ import annotations

import json
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from keyledger.audit.checkpoints import CheckpointChecker, read_checkpoints
from keyledger.audit.replay import ChainChecker, Finding, Problem, parse_event, read_messages
from keyledger.cli.common import EXIT_REFUSED, Target, iso
from keyledger.client import Refused, Unreachable

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# a broken chain is a refusal (1, as before); messages that are not events around intact
# chains get a code of their own, so a script can tell "altered" from "needs a look"
EXIT_CHAIN_BROKEN = EXIT_REFUSED
EXIT_FOREIGN = 4
# a signed checkpoint the replayed history does not match: rewritten, hashes recomputed
EXIT_CHECKPOINT = 5
SUMMARY_WIDTH = 160
# long and of no use on screen; nothing in an event is secret, this is only brevity
_NOT_SUMMARISED = {"kind", "fingerprint"}
# who and which key first; payloads arrive with sorted keys, which buries them
_FIRST = ("owner", "user", "key_id", "old_key_id", "new_key_id", "hint", "grace_until")


@dataclass
class Outcome:
    """What a replay saw: counts, the first broken event, the messages that are not events,
    and events kept for --json."""

    verified: bool
    events: int = 0
    accounts: int = 0
    problem: Problem | None = None
    findings: list[Finding] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: CheckpointChecker | None = None

    def document(self) -> dict[str, Any]:
        check: dict[str, Any] = {"events": self.events, "accounts": self.accounts, "ok": True}
        if self.checkpoints is not None:
            check["checkpoints"] = self.checkpoints.verified
            check["signatures_checked"] = self.checkpoints.public_key is not None
        return {
            "events": self.kept,
            "verified": check if self.verified else None,
            "findings": self.found() if self.verified else None,
        }

    def found(self) -> list[dict[str, Any]]:
        return [finding.as_dict() for finding in self.findings]


async def replay_events(
    nc: Client,
    stream: str,
    subject: str,
    account: str | None,
    verify: bool,
    target: Target,
    public_key: Ed25519PublicKey | None = None,
) -> Outcome:
    """Print (or keep, with --json) each event of `account` (all when None); verify them all,
    and every signed checkpoint of the stream against the heads the replay recomputes."""
    checker = ChainChecker()
    outcome = Outcome(verified=verify, findings=checker.findings)
    try:
        if verify:  # read first: a checkpoint never covers more than the stream then held
            found = await read_checkpoints(nc, stream, subject)
            outcome.checkpoints = CheckpointChecker(stream, found, public_key)
            outcome.checkpoints.check_chain()
        last = 0
        # closed before the connection is, also when a broken chain ends the loop early
        async with aclosing(read_messages(nc, stream, subject)) as messages:
            async for seq, on, data in messages:
                if outcome.checkpoints is not None:
                    outcome.checkpoints.passed(seq, checker.heads)
                last = seq
                if verify and (problem := checker.feed(seq, data, on)) is not None:
                    outcome.problem = problem
                    return outcome
                raw, why = parse_event(data, on)
                if account is not None and (raw is None or raw["stream_id"] != account):
                    continue
                if target.json:
                    kept = {"stream_seq": seq, "event": raw, "unreadable": why or None}
                    outcome.kept.append(kept)
                else:
                    typer.echo(event_line(seq, raw, why))
    except NotFoundError:
        raise Refused("unknown_stream", f"there is no stream {stream}") from None
    except TimeoutError as exc:
        raise Unreachable(str(exc) or f"timed out reading stream {stream}") from None
    if outcome.checkpoints is not None:
        outcome.checkpoints.passed(last + 1, checker.heads)
    outcome.events, outcome.accounts = checker.events, checker.accounts
    return outcome


def report(outcome: Outcome, target: Target) -> None:
    """The end of a replay: the verdict, then exit 1 for a broken chain (foreign messages
    or not), 4 for foreign messages around intact chains, 0 otherwise."""
    for finding in outcome.findings:
        typer.echo(f"foreign message: {finding}", err=True)
    if outcome.problem is not None:
        problem = outcome.problem
        if target.json:
            error = {"code": "chain_broken", "message": str(problem)}
            document = {"error": error, "problem": problem.as_dict(), "findings": outcome.found()}
            typer.echo(json.dumps(document, ensure_ascii=False))
        typer.echo(f"error: chain_broken: {problem}", err=True)
        raise typer.Exit(EXIT_CHAIN_BROKEN)
    if outcome.checkpoints is not None and outcome.checkpoints.problem is not None:
        mismatch = outcome.checkpoints.problem
        if target.json:
            error = {"code": mismatch.code, "message": str(mismatch)}
            failed = {"error": error, "checkpoint": mismatch.as_dict(), "findings": outcome.found()}
            typer.echo(json.dumps(failed, ensure_ascii=False))
        typer.echo(f"error: {mismatch.code}: {mismatch}", err=True)
        raise typer.Exit(EXIT_CHECKPOINT)
    if target.json:
        typer.echo(json.dumps(outcome.document(), ensure_ascii=False))
    elif outcome.verified:
        counted = f"{_count(outcome.events, 'event')} in {_count(outcome.accounts, 'account')}"
        counted += _checkpoints(outcome.checkpoints)
        found = f", {_count(len(outcome.findings), 'foreign message')}"
        typer.echo(f"verified {counted}: OK{found if outcome.findings else ''}")
    if outcome.findings:
        typer.echo(f"error: foreign_messages: {_foreign(outcome.findings)}", err=True)
        raise typer.Exit(EXIT_FOREIGN)


def _checkpoints(checker: CheckpointChecker | None) -> str:
    if checker is None or not checker.bodies:
        return ""
    unsigned = "" if checker.public_key is not None else " (signatures not checked: no public key)"
    return f", {_count(checker.verified, 'checkpoint')}{unsigned}"


def _foreign(findings: list[Finding]) -> str:
    first = findings[0].stream_seq
    if len(findings) == 1:
        return (
            f"the message at stream sequence {first} is not an event of the account its "
            "subject names; every reader skips it, and the chains around it are intact"
        )
    return (
        f"{len(findings)} messages (the first at stream sequence {first}) are not events of "
        "the accounts their subjects name; every reader skips them, and the chains around "
        "them are intact"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def event_line(seq: int, raw: dict[str, Any] | None, why: str = "") -> str:
    """stream seq, account, sequence, time, actor, type and a short payload summary."""
    if raw is None:
        return f"{seq:>6}  (unreadable event: {why})"
    try:
        when = iso(str(raw.get("occurred_at")))
    except ValueError:
        when = str(raw.get("occurred_at"))
    return (
        f"{seq:>6}  {raw['stream_id']}  #{raw['sequence']:<4} {when}  "
        f"{raw.get('actor', '?')}{via_text(raw.get('via'))}  {raw.get('type', '?')}  "
        f"{summary(raw.get('payload'))}"
    ).rstrip()


def via_text(via: Any) -> str:
    """ " via bob" (the frontend user, else its account) when the event records one."""
    if not isinstance(via, dict) or not via.get("account"):
        return ""
    return f" via {via.get('user') or via['account']}"


def summary(payload: Any) -> str:
    if not isinstance(payload, dict):
        return ""
    names = sorted(payload, key=lambda n: _FIRST.index(n) if n in _FIRST else len(_FIRST))
    parts = [
        f"{name}={_plain(payload[name])}"
        for name in names
        if name not in _NOT_SUMMARISED and payload[name] not in (None, "")
    ]
    text = " ".join(parts)
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 1] + "…"


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
