"""The supervisor's state file: its processes, their pids and restarts, for `keyledger health`."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

STATE_FILE = "supervisor.json"


def write_state(data_dir: Path, state: dict[str, Any]) -> None:
    """Replace the state file atomically: a reader sees the old state or the new, never half."""
    tmp = data_dir / f"{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(data_dir / STATE_FILE)


def remove_state(data_dir: Path) -> None:
    (data_dir / STATE_FILE).unlink(missing_ok=True)


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The state of the `keyledger up` running on data_dir; None if none runs there (a file
    left by one that was killed outright names a pid that is gone)."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
        pid = int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # runs, as another user
    return state if isinstance(state, dict) else None
