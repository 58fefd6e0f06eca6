"""Call ingest with 1 and with k calllog replicas (own processes) on one database: the rate
each gets over the same backlog, and the CPU each process used meanwhile (/proc/<pid>/stat).

The backlog is published first; the replicas start while the bench holds every partition's
lease, and once all of them are up the bench lets go at once: each takes its fair share
at its next tick, so the figure is the split consumption, not process start-up. Timed from
the first rows to the last, on the row count.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calls_support import pg_database, run_service, say
from nats.js import api
from nats.js.errors import NotFoundError
from sqlalchemy import func, select

from contracts.calllog import CALLS_STREAM, LEASES_BUCKET, PARTITIONS, partition_durable
from services.calllog.leases import timing
from services.calllog.store import calls
from services.common.sql import make_engine
from services.common.streams import ensure_stream

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.kv import KeyValue

TAKEOVER = 3.0  # the replicas' setting here: shares settle within TAKEOVER / 5
TICK = os.sysconf("SC_CLK_TCK")
SCALE_TARGET = 1.5


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime: fields 14 and 15


def postgres_pids() -> list[int]:
    """Every PostgreSQL process on the machine (other users' work is in it too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
    return found


def cpu_of(groups: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}


async def hold_all(kv: KeyValue) -> None:
    """Take every partition's lease for the bench (renewed by `hold_all` again)."""
    for partition in range(PARTITIONS):
        await kv.put(f"p.{partition}", b"bench")


async def members(kv: KeyValue) -> int:
    try:
        return sum(1 for key in await kv.keys() if key.startswith("m."))
    except Exception:  # no keys yet
        return 0


async def row_count(engine: Any) -> int:
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(calls)) or 0)
    except Exception:  # the service has not created its tables yet
        return 0


async def reset(nc: Client, *, purge: bool = True) -> None:
    """CALLS consumed from the start again: no partition durable left from a run; and
    emptied unless `purge` is False (the same records again: publishing them again would
    only meet the stream's duplicate window)."""
    js = nc.jetstream()
    await ensure_stream(js, CALLS_STREAM)
    if purge:
        await js.purge_stream("CALLS")
    for partition in range(PARTITIONS):
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer("CALLS", partition_durable(partition))


async def ingest_with(
    k: int, nats_url: str, nats_pid: int, db_url: str, n: int, tmp: Path
) -> dict[str, Any]:
    """Rate of k replicas over the n records in CALLS, and each process's CPU seconds."""
    import nats

    nc = await nats.connect(nats_url)
    every, life = timing(TAKEOVER)
    kv = await nc.jetstream().create_key_value(
        api.KeyValueConfig(bucket=LEASES_BUCKET, ttl=life, history=1, replicas=1)
    )
    await hold_all(kv)
    settings = {
        "KEYLEDGER_NATS_URL": nats_url,
        "KEYLEDGER_DB_URL": db_url,
        "KEYLEDGER_LOG_LEVEL": "WARNING",
        "KEYLEDGER_CALLS_RETENTION_EVERY_SECONDS": "3600",
        "KEYLEDGER_CALLS_TAKEOVER_SECONDS": str(TAKEOVER),
    }
    procs: list[subprocess.Popen[bytes]] = []
    engine = make_engine(db_url)
    try:
        for i in range(k):
            log = tmp / f"scale-{k}-{i}.log"
            procs.append(run_service("services.calllog.app:create_app", settings, log))
        deadline = time.monotonic() + 120
        while await members(kv) < k:  # every replica up, none consuming
            await hold_all(kv)
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"replicas did not start; see {tmp}")
            await asyncio.sleep(every / 2)
        groups = {f"replica {i + 1}": [p.pid] for i, p in enumerate(procs)}
        groups |= {"nats-server": [nats_pid], "postgres (all)": postgres_pids()}
        for partition in range(PARTITIONS):  # let go: each replica takes its share
            await kv.delete(f"p.{partition}")
        first = 0
        while not first:  # timed from the first batch applied
            await asyncio.sleep(0.01)
            first = await row_count(engine)
        before, started = cpu_of(groups), time.perf_counter()
        while await row_count(engine) < n:
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"ingest stuck; see {tmp}")
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
        after = cpu_of(groups)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                say(f"  a replica did not stop on SIGTERM within 30 s; see {tmp}")
        await engine.dispose()
        await nc.close()
    cpu = {name: after[name] - before[name] for name in groups}
    return {"replicas": k, "rate": (n - first) / elapsed, "seconds": elapsed, "cpu_seconds": cpu}


async def scale_figures(
    opts: Any, tmp: Path, nats_url: str, nats_pid: int, nc: Client, publish: Any
) -> dict[str, Any]:
    """1 replica, then k, each over the same n records in a fresh PostgreSQL database."""
    out: dict[str, Any] = {}
    await reset(nc)
    await publish()
    for k in (1, opts.replicas):
        await reset(nc, purge=False)
        async with pg_database("postgres", opts.pg_dsn, tmp / "scale.db") as url:
            found = await ingest_with(k, nats_url, nats_pid, url, opts.scale_calls, tmp)
        out[str(k)] = found
        cpu = ", ".join(f"{name} {s:.1f} s" for name, s in found["cpu_seconds"].items())
        say(
            f"  {k} replica(s): {found['rate']:,.0f} calls/s over {found['seconds']:.1f} s; "
            f"CPU: {cpu}"
        )
    ratio = out[str(opts.replicas)]["rate"] / out["1"]["rate"]
    verdict = "OK" if ratio >= SCALE_TARGET else "BELOW TARGET"
    say(f"  {opts.replicas} replicas vs 1: {ratio:.2f}x [{verdict}; target {SCALE_TARGET}x]")
    out["ratio"] = ratio
    return out
