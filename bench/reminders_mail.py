"""Benchmark reminder email delivery against a bare aiosmtplib loop, and mail building.

    .venv/bin/python bench/reminders_mail.py [--quick] [--mails N] [--senders N] [--db-url URL]

(a) building one reminder mail (`messages.email`), per message, over varied reminders;
(b) --mails reminders (10,000; --quick: 2,000) claimed in the notifier's database and delivered
    by the `Deliverer` (leases, sends, recorded outcomes) to a local aiosmtpd sink running in a
    process of its own, against a bare aiosmtplib loop sending the same messages prebuilt on the
    same number of sessions to the same sink, alternating, --rounds times (2), in the same run;
    the best of each is compared (and each round's pair). Target: at least 0.7x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
from reminders import Sink, key_rows, load_postgres, load_sqlite
from sqlalchemy import delete

from services.notifier.domain import ActiveKey, Person, RetryPolicy, plan
from services.notifier.reminders import messages
from services.notifier.reminders.delivery import Deliverer
from services.notifier.reminders.mailer import SmtpTransport
from services.notifier.reminders.publisher import Publisher
from services.notifier.reminders.sweep import Sweeper
from services.notifier.store import create_schema, notifier_engine
from services.notifier.store import keys as key_table
from services.notifier.store import people as people_table
from services.notifier.store import reminders as reminder_table

TARGET = 0.7  # deliverer rate / bare aiosmtplib rate
SENDER = "bench <bench@localhost>"


def say(text: str) -> None:
    print(text, flush=True)


def build_cost(count: int) -> dict[str, float]:
    """Microseconds to build one mail, ASCII and non-ASCII addresses, ten accounts."""
    now = datetime.now(UTC)
    out = {}
    for kind, domain in (("ascii", "example.com"), ("utf8", "exämple.com")):
        reminders = [
            plan(
                ActiveKey(f"acct-{i}", f"key_{i}", "klk_…abcd", now, f"user{i}", f"evt-{i}"),
                5,
                [Person(f"user{i}", f"user{i}@{domain}", admin=True)],
            )[0]
            for i in range(10)
        ]
        started = time.perf_counter()
        for i in range(count):
            messages.email(reminders[i % 10], sender=SENDER, now=now)
        out[f"build_{kind}_us"] = round((time.perf_counter() - started) / count * 1e6, 1)
    return out


class Timed:
    """Mails/s, and this process's CPU per mail (the sink and PostgreSQL run elsewhere)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.rate = self.cpu_us = 0.0

    def __enter__(self) -> Timed:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.rate = self.count / (time.perf_counter() - self._wall)
        self.cpu_us = (time.process_time() - self._cpu) / self.count * 1e6


async def bare(port: int, mails: list[tuple[str, bytes]], senders: int) -> Timed:
    """Plain aiosmtplib `sendmail` on `senders` sessions, each kept open."""

    async def session(share: list[tuple[str, bytes]]) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        await smtp.connect()
        for to, data in share:
            await smtp.sendmail("bench@localhost", [to], data, mail_options=["BODY=8BITMIME"])
        await smtp.quit()

    with Timed(len(mails)) as timed:
        await asyncio.gather(*(session(mails[i::senders]) for i in range(senders)))
    return timed


async def deliver(args: argparse.Namespace, tmp: Path, port: int, rnd: int) -> Timed:
    """The notifier's Deliverer over `args.mails` claimed reminders."""
    url = args.db_url or f"sqlite+aiosqlite:///{tmp / f'mail-{rnd}.db'}"
    engine = notifier_engine(url)
    await create_schema(engine)
    async with engine.begin() as conn:  # PostgreSQL: the previous round's rows
        for table in (reminder_table, people_table, key_table):
            await conn.execute(delete(table))
    now = datetime.now(UTC)
    rows, people = key_rows(args.mails, args.mails, now)
    if url.startswith("sqlite"):
        await asyncio.to_thread(load_sqlite, tmp / f"mail-{rnd}.db", rows, people)
    else:
        await load_postgres(url, rows, people)

    def clock() -> datetime:
        return datetime.now(UTC)

    lease = timedelta(seconds=300)
    transport = SmtpTransport(
        host="127.0.0.1", port=port, starttls=False, tls=False, user=None, password=None,
        timeout=30,
    )  # fmt: skip
    deliverer = Deliverer(
        engine=engine, transport=transport, sender=SENDER, policy=RetryPolicy(), lease=lease,
        send_timeout=timedelta(seconds=30), chunk=args.chunk, clock=clock, senders=args.senders,
    )  # fmt: skip
    sweeper = Sweeper(
        engine=engine, deliverer=deliverer, publisher=Publisher(engine, clock), clock=clock,
        batch=1000, lease=lease,
    )  # fmt: skip
    token = "bench-token"
    _, claimed = await sweeper.plan(now, token)
    assert claimed == args.mails, claimed
    with Timed(claimed) as timed:
        outcome = await deliverer.run(token)
    await engine.dispose()
    assert outcome.delivered == args.mails, outcome
    return timed


def prebuilt(count: int) -> list[tuple[str, bytes]]:
    now = datetime.now(UTC)
    rows, people = key_rows(count, count, now)
    out = []
    for row, person in zip(rows, people, strict=True):
        key = ActiveKey(row[0], row[1], row[2], row[3], row[4], row[5])
        [reminder] = plan(key, 5, [Person(person[1], person[2], admin=True)])
        mail = messages.email(reminder, sender=SENDER, now=now)
        out.append((mail.recipient, mail.data))
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"mails": args.mails, "senders": args.senders, "chunk": args.chunk}
    results |= build_cost(20_000 if args.quick else 100_000)
    say(f"building: {json.dumps(results)}")
    mails = prebuilt(args.mails)
    sink = Sink()
    bare_rates: list[Timed] = []
    ours: list[Timed] = []
    try:
        with tempfile.TemporaryDirectory(prefix="kl-bench-mail-") as folder:
            for rnd in range(args.rounds):  # alternated, so a busy spell hits both
                bare_rates.append(await bare(sink.port, mails, args.senders))
                ours.append(await deliver(args, Path(folder), sink.port, rnd))
                b, o = bare_rates[-1], ours[-1]
                say(
                    f"round {rnd}: bare {b.rate:.0f}/s ({b.cpu_us:.0f} us CPU a mail), "
                    f"deliverer {o.rate:.0f}/s ({o.cpu_us:.0f} us CPU a mail)"
                )
    finally:
        received = sink.stop()
    assert received == 2 * args.rounds * args.mails, received
    results |= {
        "db": "postgresql" if args.db_url else "sqlite",
        "bare_per_s": round(max(t.rate for t in bare_rates)),
        "deliverer_per_s": round(max(t.rate for t in ours)),
        "bare_cpu_us": round(min(t.cpu_us for t in bare_rates)),
        "deliverer_cpu_us": round(min(t.cpu_us for t in ours)),
        "ratio": round(max(t.rate for t in ours) / max(t.rate for t in bare_rates), 2),
        # each round's pair ran back to back: less exposed to one lucky baseline round
        "round_ratios": [round(o.rate / b.rate, 2) for b, o in zip(bare_rates, ours, strict=True)],
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 mails a round")
    parser.add_argument("--mails", type=int)
    parser.add_argument("--senders", type=int, default=4, help="SMTP sessions at once")
    parser.add_argument("--chunk", type=int, default=50, help="emails per lease")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--db-url", help="a PostgreSQL URL (empty database); default SQLite")
    args = parser.parse_args()
    args.mails = args.mails or (2_000 if args.quick else 10_000)
    args.rounds = args.rounds or 2
    results = asyncio.run(run(args))
    say(json.dumps(results))
    verdict = "OK" if results["ratio"] >= TARGET else "SLOW"
    say(f"delivery vs bare aiosmtplib: {results['ratio']}x (target >= {TARGET}x): {verdict}")


if __name__ == "__main__":
    main()
