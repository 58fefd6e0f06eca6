"""`keyledger replay`: print the history in stream order while checking its hash chains."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import typer
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from keyledger.cli_common import Target, iso
from keyledger.client import Refused, Unreachable
from keyledger.replay import ChainChecker, Problem, parse_event, read_stream

SUMMARY_WIDTH = 160
# long and of no use on screen; nothing in an event is secret, this is only brevity
_NOT_SUMMARISED = {"kind", "fingerprint"}
# who and which key first; payloads arrive with sorted keys, which buries them
_FIRST = ("owner", "user", "key_id", "old_key_id", "new_key_id", "hint", "grace_until")


@dataclass
class Outcome:
    """What a replay saw: counts, the first broken event, and events kept for --json."""

    verified: bool
    events: int = 0
    accounts: int = 0
    problem: Problem | None = None
    kept: list[dict[str, Any]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        check = {"events": self.events, "accounts": self.accounts, "ok": True}
        return {"events": self.kept, "verified": check if self.verified else None}


async def replay_events(
    nc: Client, stream: str, subject: str, account: str | None, verify: bool, target: Target
) -> Outcome:
    """Print (or keep, with --json) each event of `account` (all when None); verify them all."""
    checker = ChainChecker()
    outcome = Outcome(verified=verify)
    try:
        async for seq, data in read_stream(nc, stream, subject):
            if verify and (problem := checker.feed(seq, data)) is not None:
                outcome.problem = problem
                return outcome
            raw, why = parse_event(data)
            if account is not None and (raw is None or raw["stream_id"] != account):
                continue
            if target.json:
                outcome.kept.append({"stream_seq": seq, "event": raw, "unreadable": why or None})
            else:
                typer.echo(event_line(seq, raw, why))
    except NotFoundError:
        raise Refused("unknown_stream", f"there is no stream {stream}") from None
    except TimeoutError as exc:
        raise Unreachable(str(exc) or f"timed out reading stream {stream}") from None
    outcome.events, outcome.accounts = checker.events, checker.accounts
    return outcome


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
