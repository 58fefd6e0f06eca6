"""Measure how soon the other keys replica refuses a key that one replica rotated or deactivated.

Two keys services (`faststream run`, separate processes) share a nats-server of their own
(free 127.0.0.1 port, `sync_interval: always` as `keyledger up` runs it) and one database.
Each of --ops operations alternates a rotate and a deactivate (then a generate, untimed);
the delay is from the command's reply to the moment both replicas report the event applied
(`keys.query.health` carries each replica's pid and last applied stream sequence; the
queue group picks a replica at random, so four requests are kept in flight). The measuring
floor (a health round trip) and a bare ordered consumer in this process (when the event
reaches a plain JetStream subscriber, relative to the reply) are measured in the same run.
After each operation 10 keys.verify requests with the old key must all be refused.
Figures are printed and written to bench/results/replicas-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nats
from calls_support import Server, percentile, pg_database, run_service, say
from nats.js import api

from contracts.keys import KEYS_STREAM
from keyledger.client import KeyledgerClient
from services.common.streams import stream_sequence
from services.keys.vault import new_master_key

if TYPE_CHECKING:
    import subprocess

    from nats.aio.client import Client
    from nats.aio.msg import Msg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HEALTH = "keys.query.health"
IN_FLIGHT = 4
WAIT_SECONDS = 10.0


def keys_service(nats_url: str, db_url: str, master_key: str, log: Path) -> subprocess.Popen[bytes]:
    settings = {
        "KEYLEDGER_NATS_URL": nats_url,
        "KEYLEDGER_DB_URL": db_url,
        "KEYLEDGER_MASTER_KEY": master_key,
        "KEYLEDGER_LOG_LEVEL": "WARNING",
    }
    return run_service("services.keys.app:create_app", settings, log)


async def health(nc: Client) -> tuple[int, int, float]:
    """(pid, last applied stream sequence, when the reply came) of whichever replica answered."""
    result = json.loads((await nc.request(HEALTH, b"{}", timeout=5)).data)["result"]
    return int(result["pid"]), int(result["stream_seq"]), time.monotonic()


async def wait_serving(nc: Client, procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    """Until each process has answered health itself."""
    pending = {p.pid for p in procs}
    deadline = time.monotonic() + 120
    while pending:
        for proc, log in zip(procs, logs, strict=True):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"keys service stopped or stuck; log:\n{log.read_text()}")
        try:
            pending.discard((await health(nc))[0])
        except (nats.errors.Error, TimeoutError):
            await asyncio.sleep(0.1)  # not subscribed yet


async def applied_everywhere(nc: Client, pids: set[int], seq: int) -> tuple[float, bool]:
    """Poll health until every replica reports `seq` applied: when that reply came (an upper
    bound: the replica applied it at most one round trip earlier), and whether any replica
    was seen behind first."""
    behind, lagged = set(pids), False
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        answers = await asyncio.gather(*(health(nc) for _ in range(IN_FLIGHT)))
        for pid, applied, at in sorted(answers, key=lambda a: a[2]):
            if applied >= seq:
                behind.discard(pid)
                if not behind:
                    return at, lagged
            else:
                lagged = True
        if time.monotonic() > deadline:
            raise RuntimeError(f"replicas {behind} never applied stream sequence {seq}")


class Arrivals:
    """A bare ordered consumer on KEYS: when each stream sequence reached this process."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}
        self._new = asyncio.Event()

    async def on_msg(self, msg: Msg) -> None:
        self.at[stream_sequence(msg)] = time.monotonic()
        self._new.set()

    async def when(self, seq: int) -> float:
        while seq not in self.at:
            self._new.clear()
            await asyncio.wait_for(self._new.wait(), WAIT_SECONDS)
        return self.at[seq]


async def run(opts: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Server(tmp / "nats", sync=opts.sync) as server:
        async with pg_database(opts.db, opts.pg_dsn, tmp / "keys.db") as db_url:
            key = new_master_key()
            logs = [tmp / f"keys-{i}.log" for i in (1, 2)]
            procs = [keys_service(server.url, db_url, key, log) for log in logs]
            nc = await nats.connect(server.url)
            try:
                await wait_serving(nc, procs, logs)
                return await measure(nc, {p.pid for p in procs}, opts.ops)
            finally:
                await nc.close()
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.wait(30)


async def measure(nc: Client, pids: set[int], ops: int) -> dict[str, Any]:
    client = KeyledgerClient(nc)
    account = "acct-bench"
    await client.open_account(account, "alice", "alice@example.com")
    current = await client.generate(account, "alice")
    js = nc.jetstream()
    seq = (await js.stream_info(KEYS_STREAM.name)).state.last_seq  # only we append from here
    arrivals = Arrivals()
    sub = await js.subscribe(
        "keys.events.>",
        stream=KEYS_STREAM.name,
        ordered_consumer=True,
        deliver_policy=api.DeliverPolicy.NEW,
        cb=arrivals.on_msg,
    )
    floor = []
    for _ in range(200):
        started = time.monotonic()
        await health(nc)
        floor.append(time.monotonic() - started)
    delays: list[float] = []
    bare: list[float] = []
    refused = lagged = 0
    for i in range(ops):
        await applied_everywhere(nc, pids, seq)  # the current key is valid everywhere
        old = current["key"]
        if i % 2:
            await client.deactivate(account, "alice", confirm=True)
        else:
            current = await client.rotate(account, "alice", confirm=True)
        answered = time.monotonic()
        seq += 1
        applied_at, behind = await applied_everywhere(nc, pids, seq)
        delays.append(applied_at - answered)
        lagged += behind
        bare.append(await arrivals.when(seq) - answered)  # negative: pushed before the reply
        checks = await asyncio.gather(*(client.verify(old) for _ in range(10)))
        refused += sum(not c["valid"] for c in checks)
        if i % 2:
            current = await client.generate(account, "alice")
            seq += 1
    await sub.unsubscribe()
    assert seq == (await js.stream_info(KEYS_STREAM.name)).state.last_seq, "someone else appended"

    def ms(values: list[float]) -> dict[str, float]:
        return {
            "p50_ms": round(percentile(values, 50) * 1000, 3),
            "p99_ms": round(percentile(values, 99) * 1000, 3),
            "max_ms": round(max(values) * 1000, 3),
        }

    return {
        "ops": ops,
        "propagation": ms(delays),
        "health_round_trip": ms(floor),
        "bare_consumer_after_reply": ms(bare),
        "old_key_refused": f"{refused}/{10 * ops}",
        "other_replica_seen_behind_after_reply": f"{lagged}/{ops}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=200, help="rotates + deactivates, alternating")
    parser.add_argument("--db", default="postgres", help="postgres (default) or sqlite")
    parser.add_argument(
        "--no-sync", dest="sync", action="store_false", help="nats-server without fsync per write"
    )
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get(
            "KEYLEDGER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    opts = parser.parse_args()
    opts.ops = min(max(opts.ops, 2), 100_000)
    say(f"== two keys replicas on {opts.db}, {opts.ops} rotate/deactivate operations")
    with tempfile.TemporaryDirectory(prefix="keyledger-replicas-") as tmp:
        result = asyncio.run(run(opts, Path(tmp)))
    result |= {"db": opts.db, "sync_interval_always": opts.sync}
    p, f, b = (
        result["propagation"],
        result["health_round_trip"],
        result["bare_consumer_after_reply"],
    )
    say(
        f"  reply -> both replicas refuse the old key: p50 {p['p50_ms']:.2f} ms  "
        f"p99 {p['p99_ms']:.2f} ms  max {p['max_ms']:.2f} ms"
    )
    say(
        f"  measuring floor (health round trip):     p50 {f['p50_ms']:.2f} ms  "
        f"p99 {f['p99_ms']:.2f} ms  max {f['max_ms']:.2f} ms"
    )
    say(
        f"  bare ordered consumer, event after reply: p50 {b['p50_ms']:.2f} ms  "
        f"p99 {b['p99_ms']:.2f} ms  max {b['max_ms']:.2f} ms"
    )
    say(f"  old key refused by keys.verify afterwards: {result['old_key_refused']}")
    say(
        "  operations where a replica still reported the old state after the reply: "
        f"{result['other_replica_seen_behind_after_reply']}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"replicas-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    say(f"  written to {out.relative_to(ROOT)}")
    say(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
