"""Benchmark keys.verify and the keys service's cold start as ratios against bare nats-py."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verify_cold import phase_cold_start
from verify_inproc import bench_verify, check_registry, fold
from verify_load import measure_load
from verify_populate import populate, start_server
from verify_procs import (
    ECHO_SUBJECT,
    Child,
    connect,
    first_answer,
    start_echo,
    start_keys_service,
    wait_durables_caught_up,
)
from verify_profile import PySpy, cprofile, summarize_collapsed
from verify_report import progress, report

from contracts import replies
from contracts.envelope import canonical_json
from contracts.keys import VERIFY_SUBJECT, VerifyResult
from keyledger.local.server import NatsServer
from services.keys.verify import verify_reply

if TYPE_CHECKING:
    from collections.abc import Sequence

    from services.keys.registry import Registry


@dataclass
class Options:
    keys: int
    events: int
    per_account: int
    duration: float
    populate_sync: bool
    profile: bool
    py_spy: str | None
    tmp: Path
    only: str | None = None  # "verify" or "cold": one phase alone


async def phase_verify(opts: Options, summary: dict[str, Any]) -> None:
    """(a), (b), (c): echo baseline, keys.verify over the real service, in-process verify."""
    store = opts.tmp / "nats-verify"
    url, stop_populate_server = start_server(store, opts)
    try:
        progress(f"generating {opts.keys:,} keys and publishing {2 * opts.keys:,} events")
        pop = await populate(url, opts.keys, 2, keep=True)
    finally:
        stop_populate_server()
    summary["verify_population"] = {
        "accounts": opts.keys,
        "events": pop.events,
        "events_per_s": pop.rate,
        "sync_interval_always": opts.populate_sync,
    }
    keys = [a.key for a in pop.accounts]

    progress("in-process: folding the events and verifying")
    folded = fold(pop.kept)
    registry: Registry = folded.pop("registry")
    check_registry(registry, pop.accounts)
    inproc = bench_verify(registry, keys, opts.duration)
    if opts.profile:
        sample = keys[: min(len(keys), 100_000)]
        now = datetime.now(UTC)
        bodies = [canonical_json({"key": k}) for k in sample]
        summary["cprofile_verify_reply"] = cprofile(
            "verify_reply over the keys",
            lambda: [verify_reply(registry, b, now) for b in bodies],
        )
    pop.kept.clear()  # the bytes are not needed any more
    summary["inprocess_verify"] = inproc

    server = NatsServer.start(store, die_with_parent=True)  # sync_interval: always from here
    echo: Child | None = None
    service: Child | None = None
    spy: PySpy | None = None
    nc = await connect(server.url, "bench-requester")
    try:
        payloads = [canonical_json({"key": k}) for k in keys]
        first = pop.accounts[0]
        reply_size = len(
            replies.ok(VerifyResult(valid=True, account_id=first.account_id, key_id=first.key_id))
        )
        echo = start_echo(server.url, reply_size, opts.tmp)
        await first_answer(nc, echo, ECHO_SUBJECT, payloads[0], 30)
        service = start_keys_service(server.url, opts.tmp, "keys-verify")
        ready, data = await first_answer(nc, service, VERIFY_SUBJECT, payloads[-1], 600)
        if b'"valid":true' not in data:
            raise RuntimeError(f"keys.verify refused a populated key: {data!r}")
        progress(f"keys service answered after {ready:.1f} s; waiting for its audit projection")
        js = nc.jetstream()
        audit_s = await wait_durables_caught_up(js, max(120.0, pop.events / 1000))
        summary["verify_service"] = {
            "start_to_first_answer_s": ready,
            "audit_projection_caught_up_s": audit_s,
            "reply_bytes": reply_size,
        }
        if opts.py_spy:
            spy = PySpy(opts.py_spy, service.proc.pid, opts.tmp / "pyspy-verify.txt")
            await asyncio.sleep(1.0)  # let py-spy attach before the load starts

        loads: list[dict[str, Any]] = []
        for inflight in (1, 64):
            progress(f"request/reply at {inflight} in flight")
            base = await measure_load(
                nc,
                ECHO_SUBJECT,
                payloads,
                inflight,
                opts.duration,
                lambda d: len(d) == reply_size,
                "echo",
            )
            real = await measure_load(
                nc,
                VERIFY_SUBJECT,
                payloads,
                inflight,
                opts.duration,
                lambda d: b'"valid":true' in d,
                "keys.verify",
            )
            loads.append(
                {
                    "inflight": inflight,
                    "baseline": asdict(base),
                    "keys_verify": asdict(real),
                    "ratio_rps": real.rps / base.rps,
                    "ratio_p99": real.p99_ms / base.p99_ms,
                }
            )
        summary["request_reply"] = loads
        if spy:
            spy.stop()
            summary["pyspy_verify"] = summarize_collapsed(spy.out)
            spy = None
    finally:
        if spy:
            spy.stop()
        for child in (service, echo):
            if child:
                child.stop()
        await nc.close()
        server.stop()
        shutil.rmtree(store, ignore_errors=True)


async def run(opts: Options) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "args": {
            "keys": opts.keys,
            "events": opts.events,
            "duration": opts.duration,
            "populate_sync": opts.populate_sync,
        }
    }
    started = time.perf_counter()
    if opts.only in (None, "verify"):
        await phase_verify(opts, summary)
    if opts.only in (None, "cold"):
        await phase_cold_start(opts, summary)
    summary["wall_s"] = time.perf_counter() - started
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=100_000, help="active keys for (b) and (c)")
    parser.add_argument("--events", type=int, default=1_000_000, help="events for (d)")
    parser.add_argument("--per-account", type=int, default=5, help="events per account in (d)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load figure")
    parser.add_argument("--quick", action="store_true", help="10k keys, 100k events, 2 s")
    parser.add_argument(
        "--populate-sync",
        action="store_true",
        help="populate with sync_interval: always too (slow: ~4.5k events/s)",
    )
    parser.add_argument(
        "--only", choices=("verify", "cold"), help="run one phase: (a)-(c) or (d) alone"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process parts")
    parser.add_argument("--py-spy", metavar="PATH", help="py-spy binary: profile the service")
    args = parser.parse_args(argv)
    if args.quick:
        args.keys, args.events, args.duration = 10_000, 100_000, 2.0
    if args.keys < 1 or args.events < 2 or not 2 <= args.per_account <= args.events:
        parser.error("need --keys >= 1 and 2 <= --per-account <= --events")
    with tempfile.TemporaryDirectory(prefix="keyledger-bench-") as tmp:
        opts = Options(
            keys=args.keys,
            events=args.events,
            per_account=args.per_account,
            duration=min(max(args.duration, 0.2), 120.0),
            populate_sync=args.populate_sync,
            profile=args.profile,
            py_spy=args.py_spy,
            only=args.only,
            tmp=Path(tmp),
        )
        summary = asyncio.run(run(opts))
        report(summary, opts)


if __name__ == "__main__":
    main()
