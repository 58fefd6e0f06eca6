"""Benchmark the notifier: a sweep over 1,000,000 active keys, and KEYS catch-up vs bare nats-py.

    .venv/bin/python bench/reminders.py [--keys N] [--due N] [--events N] [--db-url URL]

(a) 1,000,000 active keys bulk-loaded into the notifier's projection, --due of them at their
    5-month milestone: the sweep's planning (find due keys + claim; delivery excluded), then
    delivery of those emails to a local aiosmtpd sink and their ReminderSent events, timed
    separately, then an idle sweep (nothing due) over the same table.
(b) --events KEYS events on a real nats-server: a bare nats-py pull (fetch + ack) and the
    notifier's projector (the same Projector and fold as the service) read all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import nats
from nats.js import api
from sqlalchemy import func, select

from contracts.calendar import add_months
from contracts.envelope import GENESIS_HASH, canonical_json, chain_hash
from contracts.keys import KEYS_STREAM, event_subject
from keyledger.local.server import NatsServer, free_port
from services.common.micros import to_micros
from services.common.projector import Projector
from services.common.streams import ensure_stream
from services.common.turn import turn_for
from services.notifier import projection
from services.notifier.domain import RetryPolicy, due_at
from services.notifier.reminders.delivery import Deliverer
from services.notifier.reminders.mailer import SmtpTransport
from services.notifier.reminders.publisher import Publisher
from services.notifier.reminders.sweep import Sweeper
from services.notifier.runtime import KEYS_BATCH
from services.notifier.store import create_schema, keys, notifier_engine

SWEEP_TARGET = 5.0  # seconds for a sweep over 1,000,000 keys (delivery excluded)
CATCH_UP_TARGET = 0.5  # projector rate / bare pull rate
PER_ACCOUNT = ("AccountOpened", "SuperAdminGranted", "KeyGenerated", "KeyViewed", "KeyViewed")


def say(text: str) -> None:
    print(text, flush=True)


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


SINK_SCRIPT = """
import signal, sys
from aiosmtpd.controller import Controller
class Count:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        Count.n += 1
        return "250 OK"
controller = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM})
controller.stop()
print(Count.n, flush=True)
"""


class Sink:
    """A local SMTP server in its own process (so it does not compete for our GIL)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", SINK_SCRIPT, str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}),
        )
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline().strip() == "ready"

    def stop(self) -> int:
        """Stop it; returns how many messages it accepted."""
        self._proc.terminate()
        out, _ = self._proc.communicate(timeout=30)
        return int(out.strip() or 0)


# --- (a) the sweep --------------------------------------------------------------------------


def key_rows(
    n: int, due: int, now: datetime
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Keys and their owners; `due` keys reached 5 months at `now`, the rest are younger."""
    rng = random.Random(7)
    rows, people = [], []
    for i in range(n):
        months_ago = 5 if i < due else 0
        since = add_months(now, -months_ago) - timedelta(seconds=rng.randrange(1, 86400 * 25))
        account = f"acct-{i:07d}"
        rows.append(
            (account, f"key_{i:07d}", f"klk_…{i % 10000:04d}", since, f"owner-{i:07d}",
             f"evt-{i}", 5, due_at(since, 5))
        )  # fmt: skip
        people.append((account, f"owner-{i:07d}", f"owner-{i:07d}@example.com", True))
    return rows, people


def stored(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A key row as the table keeps it: in_use_since and next_due_at as UtcMicros ints."""
    return (*row[:3], to_micros(row[3]), *row[4:7], to_micros(row[7]))


def load_sqlite(path: Path, rows: list[tuple[Any, ...]], people: list[tuple[Any, ...]]) -> None:
    """sqlite3 executemany in one transaction."""
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO notifier_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)", map(stored, rows)
        )
        db.executemany("INSERT INTO notifier_people VALUES (?, ?, ?, ?)", people)
    db.execute("ANALYZE")
    db.close()


async def load_postgres(
    url: str, rows: list[tuple[Any, ...]], people: list[tuple[Any, ...]]
) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.copy_records_to_table("notifier_keys", records=map(stored, rows))
        await conn.copy_records_to_table("notifier_people", records=people)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def bench_sweep(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    url = args.db_url or f"sqlite+aiosqlite:///{tmp / 'notifier.db'}"
    engine = notifier_engine(url)
    await create_schema(engine)
    now = datetime.now(UTC)
    progress(f"building {args.keys:,} keys, {args.due:,} of them due")
    rows, people = key_rows(args.keys, args.due, now)
    started = time.perf_counter()
    if url.startswith("sqlite"):
        await asyncio.to_thread(load_sqlite, tmp / "notifier.db", rows, people)
    else:
        await load_postgres(url, rows, people)
    progress(f"loaded in {time.perf_counter() - started:.1f} s")
    del rows, people

    sink = Sink()
    server = NatsServer.start(tmp / "nats-sweep", die_with_parent=True)
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        from contracts.notifier import NOTIFY_STREAM

        await ensure_stream(js, NOTIFY_STREAM)

        def clock() -> datetime:
            return datetime.now(UTC)

        transport = SmtpTransport(
            host="127.0.0.1", port=sink.port, starttls=False, tls=False,
            user=None, password=None, timeout=30,
        )  # fmt: skip
        lease = timedelta(seconds=300)
        deliverer = Deliverer(
            engine=engine, transport=transport, sender="bench@localhost", policy=RetryPolicy(),
            lease=lease, send_timeout=timedelta(seconds=30), chunk=50, clock=clock,
            senders=args.senders,
        )  # fmt: skip
        publisher = Publisher(engine, clock)
        publisher.bind(js)
        sweeper = Sweeper(
            engine=engine, deliverer=deliverer, publisher=publisher, clock=clock,
            batch=1000, lease=lease,
        )  # fmt: skip
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(keys)) == args.keys

        token = str(uuid.uuid4())
        t0 = time.perf_counter()
        due_keys, claimed = await sweeper.plan(now, token)
        t1 = time.perf_counter()
        outcome = await deliverer.run(token)
        t2 = time.perf_counter()
        published = await publisher.run()
        t3 = time.perf_counter()
        idle = await sweeper.sweep(now)
        t4 = time.perf_counter()
    finally:
        await nc.close()
        server.stop()
        received = sink.stop()
        await engine.dispose()
    assert (due_keys, claimed, outcome.delivered, published) == (args.due,) * 4, (
        due_keys, claimed, outcome, published,
    )  # fmt: skip
    assert received == args.due, received
    assert idle.claimed == 0
    return {
        "db": "sqlite" if url.startswith("sqlite") else "postgresql",
        "keys": args.keys,
        "due_reminders": claimed,
        "plan_s": round(t1 - t0, 3),
        "deliver_smtp_s": round(t2 - t1, 3),
        "publish_s": round(t3 - t2, 3),
        "sweep_with_delivery_s": round(t3 - t0, 3),
        "emails_per_s": round(claimed / (t2 - t1)),
        "idle_sweep_s": round(t4 - t3, 3),
    }


# --- (b) catch-up ---------------------------------------------------------------------------


def events_for(account: int) -> list[tuple[str, bytes]]:
    """An account's first events, enveloped and hash-chained as the keys service writes them."""
    aid, owner = f"acct-{account:07d}", f"owner-{account:07d}"
    payloads = {
        "AccountOpened": {"owner": owner, "owner_email": f"{owner}@example.com"},
        "SuperAdminGranted": {"user": f"admin-{account}", "email": f"admin-{account}@example.com"},
        "KeyGenerated": {"key_id": f"key_{account}", "hint": "klk_…abcd", "fingerprint": "0" * 64},
        "KeyViewed": {"key_id": f"key_{account}", "hint": "klk_…abcd"},
    }
    out, prev = [], GENESIS_HASH
    for sequence, kind in enumerate(PER_ACCOUNT, start=1):
        raw: dict[str, Any] = {
            "event_id": uuid.uuid4().hex, "type": kind, "version": 1, "stream_id": aid,
            "sequence": sequence, "occurred_at": datetime.now(UTC).isoformat(), "actor": owner,
            "correlation_id": "bench", "causation_id": "bench", "prev_hash": prev,
            "payload": {"kind": kind, **payloads[kind]},
        }  # fmt: skip
        raw["hash"] = prev = chain_hash(raw)
        out.append((event_subject(aid), canonical_json(raw)))
    return out


async def populate(js: Any, events: int) -> int:
    accounts = events // len(PER_ACCOUNT)
    for first in range(0, accounts, 200):
        batch = [e for a in range(first, min(first + 200, accounts)) for e in events_for(a)]
        await asyncio.gather(*(js.publish(s, d, stream=KEYS_STREAM.name) for s, d in batch))
    return accounts * len(PER_ACCOUNT)


async def bare_pull(js: Any, total: int, batch: int) -> float:
    """The Projector's own pull pattern (fetch a batch, ack its last message), doing nothing."""
    config = api.ConsumerConfig(ack_policy=api.AckPolicy.ALL, max_ack_pending=batch)
    sub = await js.pull_subscribe("keys.events.>", durable="bench-bare", config=config)
    seen, started = 0, time.perf_counter()
    while seen < total:
        msgs = await sub.fetch(batch, timeout=5)
        seen += len(msgs)
        await msgs[-1].ack()
    return total / (time.perf_counter() - started)


async def projector_pull(js: Any, nc: Any, total: int, url: str, batch: int) -> float:
    engine = notifier_engine(url)
    await create_schema(engine)
    runner = Projector(
        js, nc, stream=KEYS_STREAM.name, subject="keys.events.>", durable="bench-projection",
        apply=lambda events: projection.project(engine, events),
        position=lambda: projection.position(engine),
        turn=turn_for(engine, "bench-projection"), batch=batch,
    )  # fmt: skip
    started = time.perf_counter()
    await runner.start()
    while await projection.position(engine) < total:  # noqa: ASYNC110 - polling the database
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    await runner.stop()
    await engine.dispose()
    return total / elapsed


async def bench_catch_up(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    server = NatsServer.start(tmp / "nats-catchup", die_with_parent=True)
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream(timeout=30)
        await ensure_stream(js, KEYS_STREAM)
        progress(f"publishing {args.events:,} KEYS events")
        total = await populate(js, args.events)
        bare = await bare_pull(js, total, args.batch)
        url = args.db_url or f"sqlite+aiosqlite:///{tmp / 'catchup.db'}"
        fed = await projector_pull(js, nc, total, url, args.batch)
    finally:
        await nc.close()
        server.stop()
    return {
        "events": total,
        "batch": args.batch,
        "bare_pull_per_s": round(bare),
        "projector_per_s": round(fed),
        "ratio": round(fed / bare, 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kl-bench-") as folder:
        tmp = Path(folder)
        if not args.skip_catch_up:
            results["catch_up"] = await bench_catch_up(args, tmp)
            say(f"catch-up: {json.dumps(results['catch_up'])}")
        if not args.skip_sweep:
            results["sweep"] = await bench_sweep(args, tmp)
            say(f"sweep: {json.dumps(results['sweep'])}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=KEYS_BATCH, help="events per fetch")
    parser.add_argument("--senders", type=int, default=4, help="SMTP sessions at once")
    parser.add_argument("--db-url", help="a PostgreSQL URL (empty database); default SQLite")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-catch-up", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    if "sweep" in results:
        plan = results["sweep"]["plan_s"]
        verdict = "OK" if plan < SWEEP_TARGET else "SLOW"
        target = f"target < {SWEEP_TARGET} s"
        say(f"sweep planning over {args.keys:,} keys: {plan} s ({target}): {verdict}")
    if "catch_up" in results:
        ratio = results["catch_up"]["ratio"]
        verdict = "OK" if ratio >= CATCH_UP_TARGET else "SLOW"
        say(f"catch-up ratio {ratio} (target >= {CATCH_UP_TARGET}): {verdict}")


if __name__ == "__main__":
    main()
