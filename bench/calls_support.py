"""Helpers for bench/calls.py: its own nats-server, throwaway databases, percentiles."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Self

import asyncpg

from keyledger.deploy.config import render_config
from keyledger.local.server import (
    free_port,
    log_tail,
    nats_server_binary,
    parent_death_preexec,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import AsyncIterator

SYNC_LINE = "  sync_interval: always\n"


def say(text: str = "") -> None:
    print(text, flush=True)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class Server:
    """A nats-server on a free 127.0.0.1 port (never 4222), fsync per write only if asked."""

    def __init__(self, store: Path, *, sync: bool) -> None:
        store.mkdir(parents=True, exist_ok=True)
        self.url = f"nats://127.0.0.1:{free_port()}"
        conf = store / "nats.conf"
        text = render_config(
            host="127.0.0.1", port=int(self.url.rsplit(":", 1)[1]), store_dir=store
        )
        conf.write_text(text if sync else text.replace(SYNC_LINE, ""))
        log = store / "nats.log"
        with log.open("ab") as out:
            self._proc = subprocess.Popen(
                [nats_server_binary(), "-c", str(conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=parent_death_preexec(),
            )
        deadline = time.monotonic() + 15
        while b"Server is ready" not in log.read_bytes():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"nats-server did not start:\n{log_tail(log)}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(30)


@asynccontextmanager
async def pg_database(kind: str, dsn: str, sqlite_file: Path) -> AsyncIterator[str]:
    """A fresh SQLite file, or a throwaway PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        await asyncio.to_thread(sqlite_file.unlink, missing_ok=True)
        yield f"sqlite+aiosqlite:///{sqlite_file}"
        await asyncio.to_thread(sqlite_file.unlink, missing_ok=True)
        return
    if kind != "postgres":
        raise ValueError(f"unknown database kind {kind!r}: use sqlite or postgres")
    name = f"kl_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


ROOT = Path(__file__).resolve().parent.parent


def run_service(factory: str, settings: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`faststream run FACTORY --factory` as its own process, with these KEYLEDGER_* settings
    over a clean environment (a developer's exported ones must not leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")} | settings
    faststream = Path(sys.executable).parent / "faststream"
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(faststream), "run", factory, "--factory"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=parent_death_preexec(),  # no orphan if the benchmark dies
        )


def add_pg_dsn(parser: argparse.ArgumentParser) -> None:
    """--pg-dsn: the PostgreSQL server the benchmark makes its throwaway databases on."""
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get(
            "KEYLEDGER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
