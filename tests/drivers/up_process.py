"""`keyledger up --dev` as a real process for end-to-end tests: started, waited for, stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ENTRY_POINT = Path(sys.executable).parent / "keyledger"
BANNER_SECONDS = 60


@contextmanager
def up_dev(folder: Path, out: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run `keyledger up --dev --data-dir folder` (output in `out`) until the block ends,
    then stop it with Ctrl-C; the process is yielded so callers can check how it ended."""
    # a developer's own exported settings must not leak in
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")}
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [str(ENTRY_POINT), "up", "--dev", "--data-dir", str(folder)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + BANNER_SECONDS
        while "Ctrl-C to stop" not in out.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"keyledger up did not come up:\n{out.read_text()}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
