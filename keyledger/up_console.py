"""What `keyledger up` tells its user: progress on stdout, problems on stderr."""

from __future__ import annotations

import sys
from pathlib import Path

from keyledger.natsserver import log_tail


def say(text: str) -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def report(what: str, log_file: Path) -> bool:
    err(f"{what}; last lines of {log_file}:\n{log_tail(log_file)}")
    return False
