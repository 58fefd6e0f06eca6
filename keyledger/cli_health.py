"""`keyledger health`: does each service answer its health subject? (container health checks)"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from contracts import calllog, keys, notifier
from keyledger.cli_common import (
    EXIT_UNREACHABLE,
    DataDirOpt,
    JsonOpt,
    NatsUrlOpt,
    Target,
    run_async,
    show,
)
from keyledger.cli_common import connect as connect_as
from keyledger.client import Refused, Unreachable

HEALTH_SUBJECTS = {
    "keys": keys.query_subject("health"),
    "notifier": notifier.query_subject("health"),
    "calllog": calllog.query_subject("health"),
}
HEALTH_TIMEOUT = 2.0


def health(
    services: Annotated[
        list[str] | None, typer.Argument(help="keys, notifier, calllog [default: all three]")
    ] = None,
    nats_url: NatsUrlOpt = None,
    data_dir: DataDirOpt = None,
    json: JsonOpt = False,
) -> None:
    """Ask each service's health subject; exit 0 only if every one answers."""
    target = Target(nats_url, data_dir, json)
    chosen = services or list(HEALTH_SUBJECTS)
    unknown = [name for name in chosen if name not in HEALTH_SUBJECTS]
    if unknown:
        raise typer.BadParameter(f"unknown service {unknown[0]!r}; one of {list(HEALTH_SUBJECTS)}")

    async def ask() -> dict[str, Any]:
        answers: dict[str, Any] = {}
        async with await connect_as(target, request_timeout=HEALTH_TIMEOUT) as client:
            for name in chosen:
                try:
                    answers[name] = {"ok": True, **await client.request(HEALTH_SUBJECTS[name], {})}
                except (Refused, Unreachable) as exc:
                    answers[name] = {"ok": False, "error": str(exc)}
        return answers

    answers = run_async(target, ask)
    show(target, answers, (_line(name, answer) for name, answer in answers.items()))
    if not all(answer["ok"] for answer in answers.values()):
        raise typer.Exit(EXIT_UNREACHABLE)


def _line(name: str, answer: dict[str, Any]) -> str:
    if not answer["ok"]:
        return f"{name:<9} not answering: {answer['error']}"
    seq = answer.get("stream_seq")
    return f"{name:<9} ok" + (f", at stream sequence {seq}" if seq is not None else "")
