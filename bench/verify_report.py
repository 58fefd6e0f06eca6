"""Progress lines and the printed report (with its JSON summary line) for bench/verify.py."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from verify import Options

VERIFY_TARGET = 1_500_000  # verifications/s in-process, or VERIFY_RATIO_TARGET x bare
VERIFY_RATIO_TARGET = 0.4
COLD_START_TARGET = 0.5  # service replay rate / bare ordered-consumer read rate
SNAPSHOT_SPEEDUP = 5.0  # full replay time / snapshot start time, same run
SNAPSHOT_DOUBLED_DRIFT = 0.10  # snapshot start with twice the KeyViewed vs once


def say(text: str = "", *, err: bool = False) -> None:
    stream: TextIO = sys.stderr if err else sys.stdout
    print(text, file=stream, flush=True)


def progress(text: str) -> None:
    say(f"  .. {text}", err=True)


def verdict(value: float, target: float) -> str:
    return "meets target" if value >= target else "MISSES target"


def report_snapshot(cold: dict[str, Any], snap: dict[str, Any]) -> None:
    """(d) continued: the same service started from its registry snapshot."""
    full, bare = cold["service_start_to_first_verify_s"], cold["bare_ordered_read_s"]
    start = snap["snapshot_start_s"]
    speedup = snap["speedup_vs_full_replay"]
    say(f"  (3) keys service from its snapshot, start -> first verify (best of 3) {start:>6.2f} s")
    say(
        f"      full replay {full:.2f} s / snapshot start {start:.2f} s = {speedup:.1f}x: "
        f"{verdict(speedup, SNAPSHOT_SPEEDUP)} >= {SNAPSHOT_SPEEDUP:g}x; "
        f"{start / bare:.2f}x the bare read's time"
    )
    say(
        f"      (its first whole snapshot was written on the way out: "
        f"{snap['first_whole_write_at_stop_s']:.1f} s to stop)"
    )
    r = snap.get("inprocess")
    if r:
        fold_s = cold["events"] / cold["fold"]["loads_plus_apply_per_s"]
        restore_s = r["accounts_read_s"] + r["accounts_restore_s"]
        say(
            f"      in process: read + restore of the accounts {restore_s:.2f} s "
            f"(read {r['accounts_read_s']:.2f} s) vs the fold of their history "
            f"{fold_s:.2f} s: {fold_s / restore_s:.1f}x; + {r['commands']:,} commands "
            f"{r['commands_read_and_restore_s']:.2f} s (after verify is served)"
        )
    d = snap["doubled"]
    ratio = snap["doubled_vs_single"]
    ok = "meets target" if abs(ratio - 1) < SNAPSHOT_DOUBLED_DRIFT else "MISSES target"
    say(
        f"  (3') history doubled ({d['keyviewed_added']:,} more KeyViewed, {d['events']:,} "
        f"events): from the snapshot {d['snapshot_start_s']:.2f} s (best of 3)"
    )
    say(
        f"      ratio (3')/(3) {ratio:.2f}x: {ok} within +-{SNAPSHOT_DOUBLED_DRIFT:.0%} "
        f"(the tail of {d['keyviewed_added']:,} read once from the older snapshot: "
        f"{d['tail_start_s']:.1f} s, written at stop in {d['tail_stop_write_s']:.1f} s)"
    )


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
            ("registry_verify_first_time_per_s", "  each key's first verification"),
            ("verify_reply_per_s", "verify_reply(registry, body, now)"),
            ("verify_reply_fingerprint_per_s", "  with {fingerprint} bodies"),
        ):
            if key not in inproc:
                continue
            v = inproc[key]
            met = max(v / VERIFY_TARGET, v / bare / VERIFY_RATIO_TARGET)
            say(
                f"  {label:<40}{v:>12,.0f}/s  {v / bare:5.2f}x bare  "
                f"{verdict(met, 1.0)} >= {VERIFY_TARGET:,}/s or {VERIFY_RATIO_TARGET}x"
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
        snap = cold.get("snapshot")
        if snap:
            report_snapshot(cold, snap)
        f = cold["fold"]
        say(f"  in-process fold, fresh Registry, {f['events']:,} events held in memory:")
        rate("    apply(seq, orjson.loads(data)), as the Follower", f["loads_plus_apply_per_s"])
        rate(
            f"      first {f['first_window_events']:,} (Registry._recent not full)",
            f["loads_plus_apply_first_window_per_s"],
        )
        if f["loads_plus_apply_after_window_per_s"] is not None:
            rate(
                "      the rest (each apply evicts from _recent)",
                f["loads_plus_apply_after_window_per_s"],
            )
        if "absorb_gc_off_per_s" in f:
            rate(
                "    absorb(), the Follower's path, collector off",
                f["absorb_gc_off_per_s"],
                f"  ({f['absorb_gc_off_ns']:,.0f} ns/event)",
            )
        rate("    orjson.loads alone", f["json_loads_per_s"])
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
