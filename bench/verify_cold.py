"""Phase (d) of bench/verify.py: the keys service's cold start against a bare ordered consumer."""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import TYPE_CHECKING, Any

from nats.js import JetStreamContext, api
from verify_inproc import apply_all, check_registry, fold
from verify_populate import populate, start_server
from verify_procs import Child, connect, first_answer, start_keys_service
from verify_profile import PySpy, cprofile, summarize_collapsed
from verify_report import COLD_START_TARGET, progress
from verify_snapshot import (
    SERVICE,
    STARTS,
    best_snapshot_start,
    doubled_views,
    stop_writing,
    timed_restore,
)

from contracts import keyformat
from contracts.envelope import canonical_json
from contracts.keys import KEYS_STREAM, VERIFY_SUBJECT
from keyledger.local.server import NatsServer

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from verify import Options

    from services.keys.registry import Registry


async def ordered_read(js: JetStreamContext, total: int, limit: float, *, keep: bool) -> Any:
    """Bare nats-py ordered consumer over keys.events.>, counting to `total` messages."""
    count = 0
    kept: list[tuple[int, bytes]] = []
    done = asyncio.Event()

    async def count_cb(msg: Msg) -> None:
        nonlocal count
        count += 1
        if count >= total:
            done.set()

    async def keep_cb(msg: Msg) -> None:
        kept.append((msg.metadata.sequence.stream, msg.data))
        if len(kept) >= total:
            done.set()

    started = time.perf_counter()
    sub = await js.subscribe(
        "keys.events.>",
        stream=KEYS_STREAM.name,
        ordered_consumer=True,
        cb=keep_cb if keep else count_cb,
        deliver_policy=api.DeliverPolicy.ALL,
    )
    try:
        await asyncio.wait_for(done.wait(), limit)
    finally:
        elapsed = time.perf_counter() - started
        await sub.unsubscribe()
    return (total / elapsed, kept) if keep else total / elapsed


async def phase_cold_start(opts: Options, summary: dict[str, Any]) -> None:
    """(d): bare ordered-consumer read vs the service's start-to-first-verify, and the fold."""
    store = opts.tmp / "nats-cold"
    n_accounts = opts.events // opts.per_account
    url, stop_populate_server = start_server(store, opts)
    try:
        progress(f"publishing {n_accounts * opts.per_account:,} events for the cold start")
        pop = await populate(url, n_accounts, opts.per_account, keep=False)
    finally:
        stop_populate_server()
    summary["cold_population"] = {
        "accounts": n_accounts,
        "events": pop.events,
        "mix": f"per account: AccountOpened, KeyGenerated, {opts.per_account - 2}x KeyViewed",
        "events_per_s": pop.rate,
        "sync_interval_always": opts.populate_sync,
    }

    server = NatsServer.start(store, die_with_parent=True)
    service: Child | None = None
    spy: PySpy | None = None
    nc = await connect(server.url, "bench-cold")
    try:
        js = nc.jetstream(timeout=30)
        info = await js.stream_info(KEYS_STREAM.name)
        total = info.state.messages
        limit = max(120.0, total / 2000)
        progress(f"bare ordered-consumer read of {total:,} events")
        bare_rate = await ordered_read(js, total, limit, keep=False)

        progress("keys service cold start: full replay (no snapshot yet)")
        last = pop.accounts[-1]
        probe = canonical_json({"key": last.key})
        service = start_keys_service(server.url, opts.tmp, SERVICE)
        if opts.py_spy:
            spy = PySpy(opts.py_spy, service.proc.pid, opts.tmp / "pyspy-cold.txt")
        answered, data = await first_answer(
            nc, service, VERIFY_SUBJECT, probe, max(300.0, total / 1000)
        )
        if b'"valid":true' not in data:
            raise RuntimeError(f"keys.verify refused the last populated key: {data!r}")
        if spy:
            spy.stop()
            summary["pyspy_cold_start"] = summarize_collapsed(spy.out)
            spy = None
        progress("keys service stops, writing its whole registry snapshot")
        first_write_s = await stop_writing(nc, service, opts.tmp, info.state.last_seq)
        service = None
        progress("in-process: reading the snapshot and restoring a registry from it")
        restore = await timed_restore(opts.tmp)
        progress(f"keys service start from the snapshot (best of {STARTS})")
        from_snapshot_s, each = await best_snapshot_start(nc, server.url, opts, probe, total)

        progress("empty-stream start (fixed start-up cost)")
        empty = await empty_start(opts)

        progress("reading the stream into memory for the in-process fold")
        keep_rate, events = await ordered_read(js, total, limit, keep=True)
        folded = fold(events)
        registry: Registry = folded.pop("registry")
        check_registry(registry, pop.accounts)
        if opts.profile:
            sample = events[: min(len(events), 200_000)]
            summary["cprofile_fold"] = cprofile(
                f"orjson.loads + Registry.apply over {len(sample):,} events",
                lambda: apply_all(sample),
            )
        del registry, events
        service_rate = total / answered
        summary["cold_start"] = {
            "events": total,
            "bare_ordered_read_events_per_s": bare_rate,
            "bare_ordered_read_s": total / bare_rate,
            "bare_read_keep_in_list_events_per_s": keep_rate,
            "service_start_to_first_verify_s": answered,
            "service_events_per_s": service_rate,
            "ratio_service_vs_bare": service_rate / bare_rate,
            "target_ratio": COLD_START_TARGET,
            "empty_stream_start_s": empty,
            "service_replay_s_minus_empty_start": answered - empty,
            "service_replay_events_per_s_minus_empty_start": total / max(1e-9, answered - empty),
            "fold": folded,
        }
        await nc.close()
        server.stop()
        doubled, server = await doubled_views(
            lambda url: connect(url, "bench-cold-doubled"), store, opts, pop, probe, total
        )
        summary["cold_start"]["snapshot"] = {
            "first_whole_write_at_stop_s": first_write_s,
            "snapshot_start_s": from_snapshot_s,
            "snapshot_starts_s": each,
            "inprocess": restore,
            "speedup_vs_full_replay": answered / from_snapshot_s,
            "ratio_vs_bare_ordered_read_time": from_snapshot_s / (total / bare_rate),
            "doubled": doubled,
            "doubled_vs_single": doubled["snapshot_start_s"] / from_snapshot_s,
        }
    finally:
        if spy:
            spy.stop()
        if service:
            service.stop()
        if not nc.is_closed:
            await nc.close()
        server.stop()
        shutil.rmtree(store, ignore_errors=True)


async def empty_start(opts: Options) -> float:
    """The service's start-to-first-answer on an empty KEYS stream: imports, connect, schema."""
    store = opts.tmp / "nats-empty"
    server = NatsServer.start(store, die_with_parent=True)
    nc = await connect(server.url, "bench-empty")
    service: Child | None = None
    try:
        service = start_keys_service(server.url, opts.tmp, "keys-empty")
        probe = canonical_json({"key": keyformat.generate()})  # well formed, unknown
        seconds, _ = await first_answer(nc, service, VERIFY_SUBJECT, probe, 120)
        return seconds
    finally:
        if service:
            service.stop()
        await nc.close()
        server.stop()
        shutil.rmtree(store, ignore_errors=True)
