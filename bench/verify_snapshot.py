"""Phase (d) of bench/verify.py, the snapshot part: a keys service started from its snapshot."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any

from verify_populate import FastPopulateServer, populate_views
from verify_procs import Child, first_answer, start_keys_service
from verify_report import progress

from contracts.keys import VERIFY_SUBJECT, query_subject
from keyledger.local.server import NatsServer
from services.common.sql import make_engine
from services.keys import snapshot_load
from services.keys.registry import Registry

if TYPE_CHECKING:
    from pathlib import Path

    from nats.aio.client import Client
    from verify import Options
    from verify_populate import Population

SERVICE = "keys-cold"  # every start of phase (d) shares this name, so this database
STARTS = 3  # snapshot starts timed, the best one reported
STOP_SECONDS = 600.0  # the last snapshot write of a replica that replayed everything


def snapshot_position(tmp: Path) -> int:
    """The KEYS position the stored snapshot covers (0: none)."""
    with sqlite3.connect(tmp / f"{SERVICE}.db") as db:
        row = db.execute("SELECT position, generation FROM keys_snapshot").fetchone()
    return int(row[0]) if row and row[1] else 0


async def timed_restore(tmp: Path) -> dict[str, float]:
    """Seconds to read the snapshot and restore a registry from it in this process: the part
    of a snapshot start that grows with the accounts (not with their history)."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp / f'{SERVICE}.db'}")
    try:
        began = time.perf_counter()
        stored = await snapshot_load.read(engine)
        if stored is None:
            raise RuntimeError("no snapshot to restore")
        read = time.perf_counter()
        snapshot_load.restore(Registry(), stored)
        restored = time.perf_counter()
        commands = await snapshot_load.read_commands(engine, remember_after=0)
        snapshot_load.restore_commands(Registry(), commands)
        done = time.perf_counter()
    finally:
        await engine.dispose()
    return {
        "accounts_read_s": read - began,
        "accounts_restore_s": restored - read,
        "commands_read_and_restore_s": done - restored,
        "commands": len(commands),
    }


async def started(nc: Client, service: Child) -> None:
    """Wait until the service has finished starting (its broker answers health): a SIGTERM
    while it still starts would stop it before it has anything to stop."""
    await first_answer(nc, service, query_subject("health"), b"{}", 120.0)


async def stop_writing(nc: Client, service: Child, tmp: Path, last_seq: int) -> float:
    """Stop the service (it writes the rest of its snapshot on the way out); seconds taken."""
    await started(nc, service)
    started_at = time.perf_counter()
    service.stop(STOP_SECONDS)
    seconds = time.perf_counter() - started_at
    covered = snapshot_position(tmp)
    if covered != last_seq:
        raise RuntimeError(f"the snapshot covers KEYS up to {covered}, not {last_seq}")
    return seconds


async def start_from_snapshot(
    nc: Client, url: str, opts: Options, probe: bytes, total: int
) -> tuple[float, Child]:
    """Start to first answered keys.verify of a service whose snapshot covers all of KEYS."""
    service = start_keys_service(url, opts.tmp, SERVICE)
    answered, data = await first_answer(
        nc, service, VERIFY_SUBJECT, probe, max(300.0, total / 1000)
    )
    if b'"valid":true' not in data:
        service.stop()
        raise RuntimeError(f"keys.verify refused the last populated key: {data!r}")
    return answered, service


async def best_snapshot_start(
    nc: Client, url: str, opts: Options, probe: bytes, total: int
) -> tuple[float, list[float]]:
    """The best of STARTS snapshot starts (a shared machine's noise is all one way), and all."""
    seconds = []
    for _ in range(STARTS):
        answered, service = await start_from_snapshot(nc, url, opts, probe, total)
        await started(nc, service)
        service.stop()
        seconds.append(answered)
    return min(seconds), seconds


async def doubled_views(
    nc_for: Any, store: Path, opts: Options, pop: Population, probe: bytes, total: int
) -> tuple[dict[str, Any], NatsServer]:
    """Publish as many KeyViewed again, bring the snapshot up to them (a service that reads
    the new tail and stops), then time the snapshot start once more.

    nc_for(url) connects to the server it is given; returns the figures and the running
    (sync) server, which the caller stops.
    """
    views = opts.per_account - 2
    progress(f"publishing {views * len(pop.accounts):,} more KeyViewed (the history doubled)")
    fast = FastPopulateServer(store, opts.tmp / "nats-views-populate.conf")
    try:
        more = await populate_views(fast.url, pop.accounts, views)
    finally:
        fast.stop()
    server = NatsServer.start(store, die_with_parent=True)
    nc = await nc_for(server.url)
    try:
        last = total + more.events
        progress("keys service reads the new tail from its snapshot and writes it")
        tail_s, service = await start_from_snapshot(nc, server.url, opts, probe, last)
        stop_s = await stop_writing(nc, service, opts.tmp, last)
        progress(f"keys service start from the snapshot, history doubled (best of {STARTS})")
        doubled_s, each = await best_snapshot_start(nc, server.url, opts, probe, last)
    finally:
        await nc.close()
    return {
        "events": last,
        "keyviewed_added": more.events,
        "tail_start_s": tail_s,
        "tail_stop_write_s": stop_s,
        "snapshot_start_s": doubled_s,
        "snapshot_starts_s": each,
    }, server
