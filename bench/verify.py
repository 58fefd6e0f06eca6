"""Benchmark keys.verify and the keys service's cold start as ratios against bare nats-py."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext, api
from pydantic import TypeAdapter
from verify_events import Account, build_block
from verify_profile import PySpy, cprofile, summarize_collapsed

from contracts import replies
from contracts.envelope import canonical_json
from contracts.keys import KEYS_STREAM, VERIFY_SUBJECT, AccountEvent, VerifyResult
from keyledger.natsserver import (
    NatsServer,
    free_port,
    log_tail,
    nats_server_binary,
    parent_death_preexec,
    render_config,
)
from services.keys import registry as registry_module
from services.keys.registry import Registry
from services.keys.vault import new_master_key
from services.keys.verify import verify_reply

try:
    from contracts import keyformat
except ImportError:  # before keyformat moved to contracts/
    from services.keys import keyformat  # type: ignore[attr-defined,no-redef]
try:
    from services.common.streams import ensure_stream
except ImportError:  # the layout before ensure_stream moved to services/common
    from services.keys.eventstore import ensure_stream  # type: ignore[attr-defined,no-redef]

ROOT = Path(__file__).resolve().parent.parent
ECHO_SCRIPT = Path(__file__).resolve().parent / "verify_echo.py"
ECHO_SUBJECT = "bench.echo"
REQUEST_TIMEOUT = 2.0
MAX_REQUESTS_PER_TASK = 5_000_000
MAX_ERRORS_PER_TASK = 100
POLL_SECONDS = 0.05
PUBLISH_CHUNK = 1000
BUILD_ACCOUNTS = 2000  # accounts per block built in the helper process
VERIFY_TARGET = 1_000_000  # verifications/s in-process
COLD_START_TARGET = 0.5  # service replay rate / bare ordered-consumer read rate
SYNC_LINE = "  sync_interval: always\n"


def say(text: str = "", *, err: bool = False) -> None:
    stream: TextIO = sys.stderr if err else sys.stdout
    print(text, file=stream, flush=True)


def progress(text: str) -> None:
    say(f"  .. {text}", err=True)


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


# --- processes: nats-server for population, the echo responder, the keys service ----------


class FastPopulateServer:
    """The same nats-server config minus `sync_interval: always`, used only to populate."""

    def __init__(self, store_dir: Path, conf: Path) -> None:
        port = free_port()
        self.url = f"nats://127.0.0.1:{port}"
        store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = render_config(host="127.0.0.1", port=port, store_dir=store_dir.resolve())
        conf.write_text(text.replace(SYNC_LINE, ""))
        self._log = (store_dir / "nats-server-populate.log").open("ab")
        self._proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=parent_death_preexec(),
            process_group=0,
        )
        log = store_dir / "nats-server-populate.log"
        deadline = time.monotonic() + 15
        while b"Server is ready" not in log.read_bytes():
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


class Child:
    """A subprocess of ours: own process group, SIGTERM if we die, log to a file."""

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = log.open("ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            preexec_fn=parent_death_preexec(),
            process_group=0,
        )

    def check(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(f"{self.proc.args!r} exited with {code}:\n{log_tail(self.log)}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def start_echo(url: str, size: int, tmp: Path) -> Child:
    return Child([sys.executable, str(ECHO_SCRIPT), url, str(size)], tmp / "echo.log")


def start_keys_service(url: str, tmp: Path, name: str) -> Child:
    env = dict(os.environ)
    env.update(
        KEYLEDGER_NATS_URL=url,
        KEYLEDGER_DB_URL=f"sqlite+aiosqlite:///{tmp / f'{name}.db'}",
        KEYLEDGER_MASTER_KEY=new_master_key(),
        KEYLEDGER_LOG_LEVEL="WARNING",
    )
    faststream = Path(sys.executable).parent / "faststream"
    argv = [str(faststream), "run", "services.keys.app:create_app", "--factory"]
    return Child(argv, tmp / f"{name}.log", env)


async def first_answer(
    nc: Client, child: Child, subject: str, payload: bytes, limit: float
) -> tuple[float, bytes]:
    """Seconds from the child's start to its first reply, polling every 50 ms."""
    deadline = time.perf_counter() + limit
    while True:
        child.check()
        try:
            msg = await nc.request(subject, payload, timeout=0.5)
            return time.perf_counter() - child.started, msg.data
        except (NoRespondersError, NatsTimeout):
            pass
        if time.perf_counter() > deadline:
            raise RuntimeError(
                f"no answer on {subject} within {limit:.0f} s:\n{log_tail(child.log)}"
            )
        await asyncio.sleep(POLL_SECONDS)


async def wait_durables_caught_up(js: JetStreamContext, limit: float) -> float | None:
    """Seconds until every durable consumer on KEYS (the audit projection) has acked all."""
    started = time.perf_counter()
    last_seq = (await js.stream_info(KEYS_STREAM.name)).state.last_seq
    while time.perf_counter() - started < limit:
        infos = await js.consumers_info(KEYS_STREAM.name)
        durables = [i for i in infos if i.config.durable_name]
        if durables and all(
            (i.ack_floor.stream_seq if i.ack_floor else 0) >= last_seq for i in durables
        ):
            return time.perf_counter() - started
        await asyncio.sleep(0.5)
    return None


# --- request/reply load ----------------------------------------------------------------


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


# --- in-process parts -------------------------------------------------------------------


def timed_passes(work: Callable[[], int], seconds: float, max_passes: int = 10_000) -> float:
    """Operations per second of `work` (one pass returns its operation count) over ~seconds."""
    ops, started = 0, time.perf_counter()
    for _ in range(max_passes):
        ops += work()
        if time.perf_counter() - started >= seconds:
            break
    return ops / (time.perf_counter() - started)


def bench_verify(registry: Registry, keys: list[str], seconds: float) -> dict[str, Any]:
    """(c): Registry.verify and verify_reply over every key, against a bare sha256 + dict lookup."""
    now = datetime.now(UTC)
    order = keys[:]
    random.Random(7).shuffle(order)
    bodies = [canonical_json({"key": k}) for k in order]
    bare_index = {hashlib.sha256(k.encode()).digest(): k for k in order}
    verify = registry.verify

    wrong = sum(verify(k, now)[0] is not None for k in order)
    if wrong:
        raise RuntimeError(f"{wrong} of {len(order)} keys did not verify in-process")

    def bare() -> int:
        get, sha = bare_index.get, hashlib.sha256
        for k in order:
            get(sha(k.encode()).digest())
        return len(order)

    def registry_verify() -> int:
        for k in order:
            verify(k, now)
        return len(order)

    def full_reply() -> int:
        for body in bodies:
            verify_reply(registry, body, now)
        return len(order)

    out: dict[str, Any] = {
        "bare_sha256_dict_per_s": timed_passes(bare, seconds),
        "registry_verify_per_s": timed_passes(registry_verify, seconds),
        "verify_reply_per_s": timed_passes(full_reply, seconds),
    }
    out["ratio_verify_vs_bare"] = out["registry_verify_per_s"] / out["bare_sha256_dict_per_s"]
    out["ratio_reply_vs_bare"] = out["verify_reply_per_s"] / out["bare_sha256_dict_per_s"]
    out["breakdown_ns"] = verify_breakdown(registry, order, now)
    return out


def _ns_per(work: Callable[[], object], n: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e9


def verify_breakdown(registry: Registry, order: list[str], now: datetime) -> dict[str, float]:
    """ns per key for each step Registry.verify / verify_reply takes (best of 3 passes)."""
    # the same operations as contracts.keyformat / Registry, on the bench's own objects
    shape = re.compile(getattr(keyformat, "KEY_PATTERN", r"klk_[0-9a-z]{39}")).fullmatch
    n, tail = len(order), keyformat.CHECK_LEN
    crc = zlib.crc32
    digests = [hashlib.sha256(k.encode()).digest() for k in order]
    copies = [bytes(bytearray(d)) for d in digests]  # equal, not identical, as in a lookup
    index = {d: registry.verify(k, now)[1] for d, k in zip(digests, order, strict=True)}
    entry = registry.verify(order[0], now)[1]
    assert entry is not None
    bodies = [canonical_json({"key": k}) for k in order]

    def loop_only() -> None:
        for _k in order:
            pass

    def regex() -> None:
        for k in order:
            shape(k)

    def checksum() -> None:
        for k in order:
            _ = int(k[-tail:], 36) == crc(k[:-tail].encode())

    def sha() -> None:
        for k in order:
            hashlib.sha256(k.encode()).digest()

    def lookup() -> None:
        get = index.get
        for d in digests:
            get(d)

    def compare() -> None:
        for d, c in zip(digests, copies, strict=True):
            hmac.compare_digest(d, c)

    def whole() -> None:
        for k in order:
            registry.verify(k, now)

    def loads() -> None:
        for b in bodies:
            json.loads(b)["key"]

    def reply() -> None:
        for _ in range(n):
            replies.ok(VerifyResult(valid=True, account_id=entry.account_id, key_id=entry.key_id))

    base = _ns_per(loop_only, n)
    steps = {
        "regex_fullmatch": regex,
        "crc32_checksum": checksum,
        "sha256": sha,
        "dict_lookup": lookup,
        "hmac_compare_digest": compare,
        "Registry.verify_total": whole,
        "json_loads_request": loads,
        "reply_encode_VerifyResult": reply,
    }
    return {name: max(0.0, _ns_per(fn, n) - base) for name, fn in steps.items()}


def fold(events: list[tuple[int, bytes]], sample: int = 50_000) -> dict[str, Any]:
    """A fresh Registry folding every event as the Follower does: apply(seq, json.loads(data))."""
    n = len(events)
    # Registry._recent (retry answers) holds this many commands, then evicts one per event
    window = min(n, getattr(registry_module, "RECENT_COMMANDS", 100_000))
    registry = Registry()
    apply, loads = registry.apply, json.loads
    t0 = time.perf_counter()
    for seq, data in events[:window]:
        apply(seq, loads(data))
    t1 = time.perf_counter()
    for seq, data in events[window:]:
        apply(seq, loads(data))
    t2 = time.perf_counter()
    for _, data in events:
        loads(data)
    t3 = time.perf_counter()
    t_loads = t3 - t2
    t_apply = max(1e-9, t2 - t0 - t_loads)
    # the two library calls inside apply, timed alone on a sample
    raws = [loads(data) for _, data in events[:sample]]
    validate, fromiso = TypeAdapter(AccountEvent).validate_python, datetime.fromisoformat
    t4 = time.perf_counter()
    for raw in raws:
        validate(raw["payload"])
    t5 = time.perf_counter()
    for raw in raws:
        fromiso(raw["occurred_at"])
    t6 = time.perf_counter()
    apply_ns = t_apply / n * 1e9
    out: dict[str, Any] = {
        "events": n,
        "accounts": len(registry.accounts),
        "loads_plus_apply_per_s": n / (t2 - t0),
        "json_loads_per_s": n / t_loads,
        "apply_per_s": n / t_apply,
        "apply_ns": apply_ns,
        "first_window_events": window,
        "loads_plus_apply_first_window_per_s": window / (t1 - t0),
        "loads_plus_apply_after_window_per_s": (n - window) / (t2 - t1) if n > window else None,
        "payload_validate_ns": (t5 - t4) / len(raws) * 1e9,
        "fromisoformat_ns": (t6 - t5) / len(raws) * 1e9,
        "registry": registry,
    }
    return out


def check_registry(registry: Registry, accounts: list[Account]) -> None:
    """Every account folded to the version and chain head the bench computed."""
    for a in accounts:
        state = registry.accounts.get(a.account_id)
        if state is None or (state.version, state.last_hash) != (a.version, a.last_hash):
            raise RuntimeError(f"registry disagrees with the published events for {a.account_id}")


# --- ordered-consumer reads ------------------------------------------------------------


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


# --- the run ----------------------------------------------------------------------------


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


def start_server(store: Path, opts: Options) -> tuple[str, Callable[[], None]]:
    """A server to populate on: the bench's own sync server, or a fast one when allowed."""
    if opts.populate_sync:
        server = NatsServer.start(store, die_with_parent=True)
        return server.url, server.stop
    fast = FastPopulateServer(store, opts.tmp / f"{store.name}-populate.conf")
    return fast.url, fast.stop


async def connect(url: str, name: str) -> Client:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(repr(exc))
        if len(errors) <= 5:
            progress(f"{name}: nats error {exc!r}")

    return await nats.connect(url, name=name, error_cb=on_error, max_reconnect_attempts=3)


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

        progress("keys service cold start")
        last = pop.accounts[-1]
        probe = canonical_json({"key": last.key})
        service = start_keys_service(server.url, opts.tmp, "keys-cold")
        if opts.py_spy:
            spy = PySpy(opts.py_spy, service.proc.pid, opts.tmp / "pyspy-cold.txt")
        answered, data = await first_answer(
            nc, service, VERIFY_SUBJECT, probe, max(300.0, total / 1000)
        )
        if b'"valid":true' not in data:
            raise RuntimeError(f"keys.verify refused the last populated key: {data!r}")
        service.stop()
        service = None
        if spy:
            spy.stop()
            summary["pyspy_cold_start"] = summarize_collapsed(spy.out)
            spy = None

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
                f"json.loads + Registry.apply over {len(sample):,} events",
                lambda: _apply_all(sample),
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
    finally:
        if spy:
            spy.stop()
        if service:
            service.stop()
        await nc.close()
        server.stop()
        shutil.rmtree(store, ignore_errors=True)


def _apply_all(events: list[tuple[int, bytes]]) -> None:
    registry = Registry()
    for seq, data in events:
        registry.apply(seq, json.loads(data))


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


# --- report -----------------------------------------------------------------------------


def verdict(value: float, target: float) -> str:
    return "meets target" if value >= target else "MISSES target"


def report(summary: dict[str, Any], opts: Options) -> None:
    say()
    say(f"keyledger verify bench  (2 cores, shared; duration {opts.duration:g} s per figure)")
    pop = summary.get("verify_population")
    if pop:
        sync = "sync_interval: always" if pop["sync_interval_always"] else "no sync_interval"
        say(
            f"population: {pop['accounts']:,} accounts, {pop['events']:,} events published at "
            f"{pop['events_per_s']:,.0f}/s ({sync}); measured on sync_interval: always"
        )
    loads = summary.get("request_reply", [])
    if loads:
        say()
        say("(a)/(b) request/reply, requester and responder in separate processes")
        say(f"  {'':<28}{'in flight':>9}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
        for row in loads:
            for key, label in (
                ("baseline", "(a) bare nats-py echo"),
                ("keys_verify", "(b) keys.verify"),
            ):
                r = row[key]
                say(
                    f"  {label:<28}{r['inflight']:>9}{r['rps']:>10,.0f}{r['p50_ms']:>9.3f}"
                    f"{r['p99_ms']:>9.3f}{r['errors'] + r['bad']:>8}"
                )
            say(
                f"  {'    ratio (b)/(a)':<28}{row['inflight']:>9}{row['ratio_rps']:>9.2f}x"
                f"{'':>9}{row['ratio_p99']:>8.2f}x"
            )
        svc = summary["verify_service"]
        audit = svc["audit_projection_caught_up_s"]
        audit_text = "did not catch up" if audit is None else f"{audit:.1f} s after first answer"
        say(
            f"  service with {pop['accounts'] if pop else '?':,} keys: first answer "
            f"{svc['start_to_first_answer_s']:.2f} s after start; audit projection {audit_text}"
        )
    inproc = summary.get("inprocess_verify")
    if inproc:
        say()
        say("(c) in-process verification")
        bare = inproc["bare_sha256_dict_per_s"]
        say(f"  bare sha256 + dict.get (raw baseline)   {bare:>12,.0f}/s")
        for key, label in (
            ("registry_verify_per_s", "Registry.verify(key, now)"),
            ("verify_reply_per_s", "verify_reply(registry, body, now)"),
        ):
            v = inproc[key]
            say(
                f"  {label:<40}{v:>12,.0f}/s  {v / bare:5.2f}x bare  "
                f"{verdict(v, VERIFY_TARGET)} >= {VERIFY_TARGET:,}/s"
            )
        say("  cost per key, ns (best of 3 passes):")
        for name, ns in inproc["breakdown_ns"].items():
            say(f"    {name:<28}{ns:>8.0f}")
    cold = summary.get("cold_start")
    if cold:
        cpop = summary["cold_population"]
        sync = "sync_interval: always" if cpop["sync_interval_always"] else "no sync_interval"
        say()
        say(
            f"(d) cold start, {cold['events']:,} events "
            f"({cpop['mix']}; {cpop['accounts']:,} accounts)"
        )
        say(f"  populated at {cpop['events_per_s']:,.0f}/s ({sync}); read on sync_interval: always")
        bare = cold["bare_ordered_read_events_per_s"]
        svc = cold["service_events_per_s"]

        def rate(label: str, value: float, note: str = "") -> None:
            say(f"  {label:<52}{value:>10,.0f} events/s{note}")

        rate(
            "(1) bare nats-py ordered consumer, count only",
            bare,
            f"  ({cold['bare_ordered_read_s']:.2f} s)",
        )
        rate(
            "(2) keys service: start -> first keys.verify",
            svc,
            f"  ({cold['service_start_to_first_verify_s']:.2f} s)",
        )
        ratio = cold["ratio_service_vs_bare"]
        say(
            f"      ratio (2)/(1) {ratio:.2f}x: {verdict(ratio, COLD_START_TARGET)} "
            f">= {COLD_START_TARGET}x"
        )
        rate(
            "    (2) less the empty-stream start-up",
            cold["service_replay_events_per_s_minus_empty_start"],
            f"  (empty-stream start {cold['empty_stream_start_s']:.2f} s)",
        )
        rate(
            "    bare read + msg.metadata + list.append",
            cold["bare_read_keep_in_list_events_per_s"],
        )
        f = cold["fold"]
        say(f"  in-process fold, fresh Registry, {f['events']:,} events held in memory:")
        rate("    apply(seq, json.loads(data)), as the Follower", f["loads_plus_apply_per_s"])
        rate(
            f"      first {f['first_window_events']:,} (Registry._recent not full)",
            f["loads_plus_apply_first_window_per_s"],
        )
        if f["loads_plus_apply_after_window_per_s"] is not None:
            rate(
                "      the rest (each apply evicts from _recent)",
                f["loads_plus_apply_after_window_per_s"],
            )
        rate("    json.loads alone", f["json_loads_per_s"])
        rate(
            "    Registry.apply alone (the difference)",
            f["apply_per_s"],
            f"  ({f['apply_ns']:,.0f} ns/event)",
        )
        say(
            f"      of which TypeAdapter.validate_python ~{f['payload_validate_ns']:,.0f} ns, "
            f"datetime.fromisoformat ~{f['fromisoformat_ns']:,.0f} ns"
        )
    for key in ("cprofile_verify_reply", "cprofile_fold", "pyspy_verify", "pyspy_cold_start"):
        if key in summary:
            say()
            say(f"[{key}]")
            say(summary[key])
    say()
    flat = {k: v for k, v in summary.items() if not k.startswith(("cprofile", "pyspy"))}
    say(json.dumps(flat, default=str, separators=(",", ":")))


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
    await phase_verify(opts, summary)
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
            tmp=Path(tmp),
        )
        summary = asyncio.run(run(opts))
        report(summary, opts)


if __name__ == "__main__":
    main()
