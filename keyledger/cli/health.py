"""`keyledger health`: does each service answer its health subject? (container health checks)"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from contracts.connection import resolve_data_dir
from keyledger.cli.common import (
    EXIT_UNREACHABLE,
    DataDirOpt,
    JsonOpt,
    NatsUrlOpt,
    Target,
    run_async,
    show,
)
from keyledger.cli.common import connect as connect_as
from keyledger.client import KeyledgerClient, Refused, Unreachable
from keyledger.local.state import read_state

HEALTH_PROBES: dict[str, Callable[[KeyledgerClient], Awaitable[dict[str, Any]]]] = {
    "keys": lambda c: c.health(),
    "notifier": lambda c: c.notifier.health(),
    "calllog": lambda c: c.calls.health(),
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
    """Ask each service's health subject; exit 0 only if every one answers.

    Under `keyledger up` it also lists the processes it supervises: their pids, how often
    each was restarted and how it last ended (`supervisor` in --json).
    """
    target = Target(nats_url, data_dir, json)
    chosen = services or list(HEALTH_PROBES)
    unknown = [name for name in chosen if name not in HEALTH_PROBES]
    if unknown:
        raise typer.BadParameter(f"unknown service {unknown[0]!r}; one of {list(HEALTH_PROBES)}")

    async def ask() -> dict[str, Any]:
        answers: dict[str, Any] = {}
        async with await connect_as(target, request_timeout=HEALTH_TIMEOUT) as client:
            for name in chosen:
                try:
                    answers[name] = {"ok": True, **await HEALTH_PROBES[name](client)}
                except (Refused, Unreachable) as exc:
                    answers[name] = {"ok": False, "error": str(exc)}
        return answers

    answers = run_async(target, ask)
    lines = [_line(name, answer) for name, answer in answers.items()]
    result: dict[str, Any] = dict(answers)
    folder = resolve_data_dir(data_dir, os.environ)
    if (state := read_state(folder)) is not None:
        result["supervisor"] = state
        lines += _supervised(state)
    show(target, result, lines)
    if not all(answer["ok"] for answer in answers.values()):
        raise typer.Exit(EXIT_UNREACHABLE)


def _supervised(state: dict[str, Any]) -> list[str]:
    """`keyledger up`'s processes, one line each: pid or state, restarts, how it last ended."""
    lines = [f"supervised by keyledger up (pid {state['pid']}, since {state['started_at']}):"]
    for proc in state.get("processes", []):
        running = f"pid {proc['pid']}" if proc.get("pid") else proc.get("state", "down")
        line = f"  {proc['name']:<24} {running}"
        if (restarts := proc.get("restarts")) is not None:
            line += f", {restarts} restart{'' if restarts == 1 else 's'}"
        if proc.get("last_exit"):
            line += f", last {proc['last_exit']} at {proc['last_exit_at']}"
        lines.append(line)
    return lines


def _line(name: str, answer: dict[str, Any]) -> str:
    if not answer["ok"]:
        return f"{name:<9} not answering: {answer['error']}"
    seq = answer.get("stream_seq")
    return f"{name:<9} ok" + (f", at stream sequence {seq}" if seq is not None else "")
