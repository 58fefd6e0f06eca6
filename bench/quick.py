"""`make bench`: the quick form of every benchmark, one after another, each in its own process.

    .venv/bin/python bench/quick.py [--full] [--only NAME[,NAME...]]

Each benchmark prints its own figures (ratios against the raw baseline it measures in the
same run) and writes them under bench/results/; this prints how long each took at the end.
The quick forms together take a few minutes on 2 cores; --full runs the documented full
forms instead (about an hour). A benchmark that fails does not stop the others, but makes
the exit status 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (quick arguments, full arguments); the scripts are in bench/
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "verify": (["verify.py", "--quick"], ["verify.py"]),
    # on PostgreSQL it also runs (d): call ingest by 1 replica and by 2, CPU per process
    "calls": (["calls.py", "--quick", "--db", "postgres"], ["calls.py"]),
    "retention": (["calls_retention.py", "--quick", "--repeat", "1"], ["calls_retention.py"]),
    "reminders": (
        ["reminders.py", "--keys", "100000", "--due", "500", "--events", "50000"],
        ["reminders.py"],
    ),
    "mail": (["reminders_mail.py", "--quick"], ["reminders_mail.py"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="the full forms (about an hour)")
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(BENCHES)}")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    took: list[tuple[str, float, int]] = []
    for name in names:
        script, *rest = BENCHES[name][1 if args.full else 0]
        print(f"\n=== {name}: bench/{script} {' '.join(rest)}", flush=True)
        began = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script), *rest], cwd=HERE.parent)
        took.append((name, time.perf_counter() - began, code))
    print("\n=== done")
    for name, seconds, code in took:
        print(f"  {name:<12} {seconds:7.1f} s  {'ok' if code == 0 else f'FAILED ({code})'}")
    print(f"  {'total':<12} {sum(s for _, s, _ in took):7.1f} s")
    return 1 if any(code for _, _, code in took) else 0


if __name__ == "__main__":
    sys.exit(main())
