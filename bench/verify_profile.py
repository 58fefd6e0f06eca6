"""Profiling helpers for bench/verify.py: py-spy on the service process, cProfile in-process."""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import signal
import subprocess
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
OURS = ("services/keys/", "contracts/")


class PySpy:
    """`py-spy record --pid` on a running process; stopped with SIGINT, which writes the file."""

    def __init__(self, binary: str, pid: int, out: Path, rate: int = 250) -> None:
        self.out = out
        self._log = (out.parent / f"{out.name}.log").open("wb")
        self._proc = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--function",
                "--nonblocking",
                "--rate",
                str(rate),
                "--output",
                str(out),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, timeout: float = 20.0) -> None:
        """Stop recording (no-op if the target already exited and py-spy with it)."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in (*OURS, "site-packages/", "python3.11/"):
        if marker in path:
            path = path[path.index(marker) :].removeprefix("site-packages/")
            break
    return f"{match['func']} ({path})"


def summarize_collapsed(path: Path, top: int = 15) -> str:
    """Top self-time frames, and inclusive time of the project's own functions."""
    if not path.exists():
        return f"(no py-spy output at {path})"
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            if any(marker in frame for marker in OURS):
                inclusive[frame] += count
    if not total:
        return "(py-spy recorded no samples)"
    lines = [f"py-spy: {total} samples of active threads", "  self time:"]
    lines += [f"    {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    lines.append("  inclusive time, services/keys and contracts:")
    lines += [f"    {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


def cprofile(label: str, work: Callable[[], object], top: int = 15) -> str:
    """Run `work` under cProfile; the top functions by own time, as text."""
    profiler = cProfile.Profile()
    profiler.runcall(work)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats(pstats.SortKey.TIME).print_stats(top)
    body = "\n".join(
        line for line in out.getvalue().splitlines() if line.strip() and "Ordered by" not in line
    )
    return f"cProfile of {label} (own time; cProfile inflates small calls):\n{body}"
