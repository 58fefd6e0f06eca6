"""Request/reply load for bench/verify.py: in-flight request loops, rates and percentiles."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.client import Client

REQUEST_TIMEOUT = 2.0
MAX_REQUESTS_PER_TASK = 5_000_000
MAX_ERRORS_PER_TASK = 100


@dataclass
class Load:
    name: str
    inflight: int
    requests: int
    errors: int
    bad: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def drive(
    nc: Client,
    subject: str,
    payloads: list[bytes],
    inflight: int,
    seconds: float,
    good: Callable[[bytes], bool],
    name: str,
) -> Load:
    """`inflight` tasks, each looping `await nc.request(...)` until `seconds` pass."""
    started = time.perf_counter()
    until = started + seconds

    async def worker(seed: int) -> tuple[list[float], int, int]:
        pick = random.Random(seed).randrange
        n = len(payloads)
        lat: list[float] = []
        errors = bad = 0
        for _ in range(MAX_REQUESTS_PER_TASK):
            t0 = time.perf_counter()
            if t0 >= until or errors >= MAX_ERRORS_PER_TASK:
                break
            try:
                msg = await nc.request(subject, payloads[pick(n)], timeout=REQUEST_TIMEOUT)
            except (NatsTimeout, NoRespondersError):
                errors += 1
                continue
            lat.append(time.perf_counter() - t0)
            if not good(msg.data):
                bad += 1
        return lat, errors, bad

    results = await asyncio.gather(*(worker(i) for i in range(inflight)))
    elapsed = time.perf_counter() - started
    latencies = sorted(x for lat, _, _ in results for x in lat)
    return Load(
        name=name,
        inflight=inflight,
        requests=len(latencies),
        errors=sum(e for _, e, _ in results),
        bad=sum(b for _, _, b in results),
        seconds=elapsed,
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1e3,
        p99_ms=percentile(latencies, 0.99) * 1e3,
    )


async def measure_load(
    nc: Client,
    subject: str,
    payloads: list[bytes],
    inflight: int,
    seconds: float,
    good: Callable[[bytes], bool],
    name: str,
) -> Load:
    await drive(nc, subject, payloads, inflight, min(1.0, seconds / 4), good, name)  # warm-up
    return await drive(nc, subject, payloads, inflight, seconds, good, name)
