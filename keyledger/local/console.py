"""What `keyledger up` tells its user: progress on stdout, problems on stderr."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from keyledger.local.restart import GIVE_UP_DEATHS, GIVE_UP_WINDOW, Restarts
from keyledger.local.server import log_tail

if TYPE_CHECKING:
    from pathlib import Path


def say(text: str) -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def report(what: str, log_file: Path, since: int = 0) -> bool:
    """`what`, with the end of the log written since byte `since` (this run's part)."""
    err(f"{what}; last lines of {log_file} from this run:\n{log_tail(log_file, since=since)}")
    return False


def death(name: str, pid: int, history: Restarts, log_file: Path, tail: str) -> None:
    """One line for a death (who, how, and what happens next), then this run's log tail."""
    if history.due is None:
        then = (
            f"it died {GIVE_UP_DEATHS} times within {GIVE_UP_WINDOW:.0f} s: giving up, "
            "stopping everything"
        )
    else:
        then = f"restarting it in {history.delay():g} s"
    indented = "\n".join(f"    {line}" for line in tail.splitlines())
    err(
        f"{name} (pid {pid}) {history.last_exit}; {then}. Its log ({log_file}) since it "
        f"started:\n{indented}"
    )
