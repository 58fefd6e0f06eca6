"""Populating the KEYS stream for bench/verify.py, on a sync or a fast populate-only nats-server."""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import nats
from verify_events import Account, build_block, build_views
from verify_report import progress

from contracts.keys import KEYS_STREAM
from keyledger.deploy.config import render_config
from keyledger.local.server import (
    NatsServer,
    free_port,
    log_tail,
    nats_server_binary,
    parent_death_preexec,
)

try:
    from services.common.streams import ensure_stream
except ImportError:  # the layout before ensure_stream moved to services/common
    from services.keys.eventstore import ensure_stream  # type: ignore[attr-defined,no-redef]

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from verify import Options

PUBLISH_CHUNK = 1000
BUILD_ACCOUNTS = 2000  # accounts per block built in the helper process
SYNC_LINE = "  sync_interval: always\n"


@dataclass
class Population:
    accounts: list[Account]
    events: int
    seconds: float
    kept: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def populate(url: str, n_accounts: int, per_account: int, *, keep: bool) -> Population:
    """Publish per_account events for each account straight onto KEYS, ~1000 acks in flight.

    A second process builds the next block of events (key generation, hash chain, JSON)
    while this one publishes the current block.
    """
    nc = await nats.connect(url, name="bench-populate")
    js = nc.jetstream(timeout=60)
    await ensure_stream(js, KEYS_STREAM)
    accounts: list[Account] = []
    kept: list[tuple[int, bytes]] = []
    total = n_accounts * per_account
    blocks = [
        (first, min(BUILD_ACCOUNTS, n_accounts - first), per_account)
        for first in range(0, n_accounts, BUILD_ACCOUNTS)
    ]
    loop = asyncio.get_running_loop()
    done, last_seq, next_report = 0, 0, time.perf_counter() + 10
    started = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = deque(loop.run_in_executor(pool, build_block, *b) for b in blocks[:2])
        queued = len(pending)
        try:
            while pending:
                built, events = await pending.popleft()
                if queued < len(blocks):
                    pending.append(loop.run_in_executor(pool, build_block, *blocks[queued]))
                    queued += 1
                accounts += built
                for i in range(0, len(events), PUBLISH_CHUNK):
                    chunk = events[i : i + PUBLISH_CHUNK]
                    acks = await asyncio.gather(
                        *(js.publish(subj, data, stream=KEYS_STREAM.name) for subj, data in chunk)
                    )
                    for ack, (_, data) in zip(acks, chunk, strict=True):
                        if ack.seq <= last_seq:
                            raise RuntimeError(f"stream order broken at seq {ack.seq}")
                        last_seq = ack.seq
                        if keep:
                            kept.append((ack.seq, data))
                    done += len(chunk)
                if time.perf_counter() >= next_report:
                    progress(f"populated {done:,}/{total:,} events")
                    next_report = time.perf_counter() + 10
        finally:
            for future in pending:
                future.cancel()
            await nc.close()
    return Population(accounts, done, time.perf_counter() - started, kept)


async def populate_views(url: str, accounts: list[Account], views: int) -> Population:
    """`views` more KeyViewed events per account (its chain continued), built in a helper
    process block by block as populate() does; the accounts' chain heads move on."""
    nc = await nats.connect(url, name="bench-populate-views")
    js = nc.jetstream(timeout=60)
    loop = asyncio.get_running_loop()
    blocks = [accounts[i : i + BUILD_ACCOUNTS] for i in range(0, len(accounts), BUILD_ACCOUNTS)]
    done, started = 0, time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = deque(loop.run_in_executor(pool, build_views, b, views) for b in blocks[:2])
        queued = len(pending)
        try:
            while pending:
                built, events = await pending.popleft()
                if queued < len(blocks):
                    pending.append(loop.run_in_executor(pool, build_views, blocks[queued], views))
                    queued += 1
                for moved in built:  # the helper process moved each chain on: take its heads
                    accounts[int(moved.account_id.rsplit("-", 1)[1])] = moved
                for i in range(0, len(events), PUBLISH_CHUNK):
                    chunk = events[i : i + PUBLISH_CHUNK]
                    await asyncio.gather(
                        *(js.publish(subj, data, stream=KEYS_STREAM.name) for subj, data in chunk)
                    )
                    done += len(chunk)
        finally:
            for future in pending:
                future.cancel()
            await nc.close()
    return Population(accounts, done, time.perf_counter() - started)


class FastPopulateServer:
    """The same nats-server config minus `sync_interval: always`, used only to populate."""

    def __init__(self, store_dir: Path, conf: Path) -> None:
        port = free_port()
        self.url = f"nats://127.0.0.1:{port}"
        store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = render_config(host="127.0.0.1", port=port, store_dir=store_dir.resolve())
        conf.write_text(text.replace(SYNC_LINE, ""))
        log = store_dir / "nats-server-populate.log"
        # a second server on the same store appends to the first one's log: read past it
        offset = log.stat().st_size if log.exists() else 0
        self._log = log.open("ab")
        self._proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=parent_death_preexec(),
            process_group=0,
        )
        deadline = time.monotonic() + 15
        while b"Server is ready" not in log.read_bytes()[offset:]:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"populate nats-server did not start:\n{log_tail(log)}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()


def start_server(store: Path, opts: Options) -> tuple[str, Callable[[], None]]:
    """A server to populate on: the bench's own sync server, or a fast one when allowed."""
    if opts.populate_sync:
        server = NatsServer.start(store, die_with_parent=True)
        return server.url, server.stop
    fast = FastPopulateServer(store, opts.tmp / f"{store.name}-populate.conf")
    return fast.url, fast.stop
