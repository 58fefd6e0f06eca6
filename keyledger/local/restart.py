"""When `keyledger up` restarts a process that died, and when it gives up on it."""

from __future__ import annotations

import signal
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

FIRST_DELAY = 0.5  # seconds before the first restart; doubles on each death in a row
MAX_DELAY = 30.0
STABLE_SECONDS = 30.0  # up this long: the next death starts the backoff over
GIVE_UP_DEATHS = 5  # this many deaths ...
GIVE_UP_WINDOW = 60.0  # ... within this many seconds: the process keeps failing; stop all


def exit_status(code: int) -> str:
    """`exited with code 1`, `killed by SIGKILL`: as a person would say it."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Restarts:
    """One supervised process's history: its deaths, its restarts, when the next is due."""

    restarts: int = 0
    in_a_row: int = 0  # deaths since it last stayed up STABLE_SECONDS
    deaths: deque[float] = field(default_factory=deque)  # monotonic times, last minute only
    started_at: float = field(default_factory=time.monotonic)
    last_exit: str | None = None
    last_exit_at: str | None = None  # ISO, UTC
    due: float | None = None  # monotonic time of the pending restart; None: running

    def died(self, code: int, now: float | None = None) -> bool:
        """Record a death; False when it is one too many (give up), else schedule a restart."""
        now = time.monotonic() if now is None else now
        self.last_exit, self.last_exit_at = exit_status(code), now_iso()
        if now - self.started_at >= STABLE_SECONDS:
            self.in_a_row = 0
        self.in_a_row += 1
        self.deaths.append(now)
        while self.deaths and now - self.deaths[0] > GIVE_UP_WINDOW:
            self.deaths.popleft()
        if len(self.deaths) >= GIVE_UP_DEATHS:
            self.due = None
            return False
        self.due = now + self.delay()
        return True

    def delay(self) -> float:
        """0.5 s after the first death in a row, doubling, at most MAX_DELAY."""
        return min(FIRST_DELAY * 2.0 ** (self.in_a_row - 1), MAX_DELAY)

    def is_due(self, now: float | None = None) -> bool:
        return self.due is not None and (time.monotonic() if now is None else now) >= self.due

    def restarted(self, now: float | None = None) -> None:
        self.restarts += 1
        self.due = None
        self.started_at = time.monotonic() if now is None else now

    def state(self) -> dict[str, object]:
        """For the state file `keyledger health` reads."""
        return {
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_exit_at": self.last_exit_at,
        }
