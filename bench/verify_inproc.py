"""In-process parts of bench/verify.py: Registry.verify against a bare baseline, and the fold."""

from __future__ import annotations

import gc
import hashlib
import json
import random
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import TypeAdapter

from contracts import keyformat, replies
from contracts.envelope import canonical_json
from contracts.keys import AccountEvent, VerifyResult, event_subject
from services.common.eventlog import Stored
from services.keys import registry as registry_module
from services.keys.follower import absorb
from services.keys.registry import Registry
from services.keys.verify import verify_reply

if TYPE_CHECKING:
    from collections.abc import Callable

    from verify_events import Account


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

    def first_verify() -> int:
        # every key as if never verified before: the registry remembers which indexed keys
        # passed the format check (a sha-256 match is the same key); forget that each pass
        forget = getattr(registry, "_well_formed", set()).clear
        forget()
        for k in order:
            verify(k, now)
        return len(order)

    def full_reply() -> int:
        for body in bodies:
            verify_reply(registry, body, now)
        return len(order)

    def fingerprint_reply() -> int:
        for body in fingerprints:
            verify_reply(registry, body, now)
        return len(order)

    fingerprints = [canonical_json({"fingerprint": keyformat.fingerprint(k)}) for k in order]
    out: dict[str, Any] = {
        "bare_sha256_dict_per_s": timed_passes(bare, seconds),
        "registry_verify_per_s": timed_passes(registry_verify, seconds),
        "registry_verify_first_time_per_s": timed_passes(first_verify, seconds),
        "verify_reply_per_s": timed_passes(full_reply, seconds),
        "verify_reply_fingerprint_per_s": timed_passes(fingerprint_reply, seconds),
    }
    bare_rate = out["bare_sha256_dict_per_s"]
    out["ratio_verify_vs_bare"] = out["registry_verify_per_s"] / bare_rate
    out["ratio_verify_first_time_vs_bare"] = out["registry_verify_first_time_per_s"] / bare_rate
    out["ratio_reply_vs_bare"] = out["verify_reply_per_s"] / bare_rate
    out["ratio_reply_fingerprint_vs_bare"] = out["verify_reply_fingerprint_per_s"] / bare_rate
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
    # the same operations as contracts.keyformat / Registry / verify.py, on the bench's objects
    n = len(order)
    well_formed = getattr(keyformat, "is_well_formed_ascii", None)
    raws = [k.encode() for k in order]
    digests = [hashlib.sha256(r).digest() for r in raws]
    index = {d: registry.verify(k, now)[1] for d, k in zip(digests, order, strict=True)}
    bodies = [canonical_json({"key": k}) for k in order]
    spaced = [json.dumps({"key": k}).encode() for k in order]  # the parser's path
    entries = [index[d] for d in digests]

    def loop_only() -> None:
        for _k in order:
            pass

    def shape_and_checksum() -> None:
        check = well_formed or (lambda r: keyformat.is_well_formed(r.decode()))
        for r in raws:
            check(r)

    def sha() -> None:
        for k in order:
            hashlib.sha256(k.encode()).digest()

    def lookup() -> None:
        get = index.get
        for d in digests:
            get(d)

    def whole() -> None:
        for k in order:
            registry.verify(k, now)

    def reply_usual_body() -> None:
        for b in bodies:
            verify_reply(registry, b, now)

    def reply_parsed_body() -> None:
        for b in spaced:
            verify_reply(registry, b, now)

    def reply_encode_uncached() -> None:  # what a key's first valid answer costs, once
        for e in entries:
            assert e is not None
            replies.ok(VerifyResult(valid=True, account_id=e.account_id, key_id=e.key_id))

    base = _ns_per(loop_only, n)
    steps = {
        "shape_and_checksum": shape_and_checksum,
        "sha256": sha,
        "dict_lookup": lookup,
        "Registry.verify_total": whole,
        "verify_reply_usual_body": reply_usual_body,
        "verify_reply_body_with_space": reply_parsed_body,
        "reply_encode_first_time": reply_encode_uncached,
    }
    return {name: max(0.0, _ns_per(fn, n) - base) for name, fn in steps.items()}


def fold(events: list[tuple[int, bytes]], sample: int = 50_000) -> dict[str, Any]:
    """A fresh Registry folding every event: apply(seq, orjson.loads(data)), collector off."""
    n = len(events)
    # Registry._recent (retry answers) holds this many commands, then evicts one per event
    window = min(n, getattr(registry_module, "RECENT_COMMANDS", 100_000))
    registry = Registry()
    apply, loads = registry.apply, orjson.loads
    # the collector off, as the keys runtime has it while it replays (then gc.freeze())
    gc.collect()
    gc.disable()
    try:
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
    finally:
        gc.enable()
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
    absorb_s = time_absorb(events)
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
        "absorb_gc_off_per_s": n / absorb_s,
        "absorb_gc_off_ns": absorb_s / n * 1e9,
        "registry": registry,
    }
    return out


def time_absorb(events: list[tuple[int, bytes]]) -> float:
    """Seconds for the Follower's whole path per message (Stored, envelope and chain checks,
    fold) into a fresh Registry, with the collector off as the runtime has it in replay."""
    subjects: dict[str, str] = {}
    held = []
    for seq, data in events:
        account = orjson.loads(data)["stream_id"]
        held.append((seq, subjects.setdefault(account, event_subject(account)), data))
    registry = Registry()
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        for seq, subject, data in held:
            absorb(registry, Stored(seq, subject, data), "bench")
        return time.perf_counter() - started
    finally:
        gc.enable()


def apply_all(events: list[tuple[int, bytes]]) -> None:
    registry = Registry()
    for seq, data in events:
        registry.apply(seq, orjson.loads(data))


def check_registry(registry: Registry, accounts: list[Account]) -> None:
    """Every account folded to the version and chain head the bench computed."""
    for a in accounts:
        state = registry.accounts.get(a.account_id)
        if state is None or (state.version, state.last_hash) != (a.version, a.last_hash):
            raise RuntimeError(f"registry disagrees with the published events for {a.account_id}")
