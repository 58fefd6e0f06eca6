"""Read an event stream from the start, verify every account's hash chain, name foreign messages."""

from __future__ import annotations

import json
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import nats.errors
from nats.js import api
from nats.js.errors import NotFoundError

from contracts.envelope import GENESIS_HASH, chain_hash
from contracts.keys import ALL_EVENTS, KEYS_STREAM
from contracts.stored import envelope_problem

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Iterable

    from nats.aio.client import Client
    from nats.aio.msg import Msg

DEFAULT_SUBJECT = ALL_EVENTS
READ_TIMEOUT = 10.0


async def read_messages(
    nc: Client, stream: str = KEYS_STREAM.name, subject_filter: str = DEFAULT_SUBJECT
) -> AsyncGenerator[tuple[int, str, bytes], None]:
    """(stream sequence, subject, raw message) in order, up to the stream's end when reading
    began (read_stored without the headers)."""
    async with aclosing(read_stored(nc, stream, subject_filter)) as stored:
        async for msg in stored:
            yield msg.metadata.sequence.stream, msg.subject, msg.data


async def read_stored(
    nc: Client, stream: str = KEYS_STREAM.name, subject_filter: str = DEFAULT_SUBJECT
) -> AsyncGenerator[Msg, None]:
    """Every stored message matching the filter in order, headers included, up to the
    stream's end when reading began.

    An ephemeral ordered consumer: no acks, nothing durable left behind, and it needs
    only read access to the stream. Close the generator (contextlib.aclosing) before the
    connection when leaving it early, or its consumer is removed from a closed connection.
    """
    js = nc.jetstream()
    last = (await js.stream_info(stream)).state.last_seq
    try:
        # the first match, if any: an ordered consumer with nothing to deliver would just wait
        await js.get_msg(stream, seq=1, subject=subject_filter, next=True)
    except NotFoundError:
        return
    sub = await js.subscribe(
        subject_filter,
        stream=stream,
        ordered_consumer=True,
        deliver_policy=api.DeliverPolicy.ALL,
    )
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=READ_TIMEOUT)
            except nats.errors.TimeoutError:
                raise TimeoutError(f"stream {stream} stopped delivering while replaying") from None
            meta = msg.metadata
            seq = meta.sequence.stream
            if seq > last:
                return  # appended after we began: not part of this replay
            yield msg
            # num_pending counts matching messages after this one, so 0 means the end
            if seq >= last or meta.num_pending == 0:
                return
    finally:
        if not nc.is_closed:
            await sub.unsubscribe()


async def read_stream(
    nc: Client, stream: str = KEYS_STREAM.name, subject_filter: str = DEFAULT_SUBJECT
) -> AsyncIterator[tuple[int, bytes]]:
    """(stream sequence, raw message) in order: read_messages without the subjects."""
    async with aclosing(read_messages(nc, stream, subject_filter)) as messages:
        async for seq, _, data in messages:
            yield seq, data


@dataclass(frozen=True)
class Finding:
    """A message that is not an event of the account its subject names: no chain counts it."""

    stream_seq: int
    subject: str | None
    reason: str

    def __str__(self) -> str:
        where = f" on {self.subject}" if self.subject else ""
        return f"stream sequence {self.stream_seq}{where}: not an event ({self.reason})"

    def as_dict(self) -> dict[str, Any]:
        return {"stream_seq": self.stream_seq, "subject": self.subject, "reason": self.reason}


@dataclass(frozen=True)
class Problem:
    """The first event that breaks a chain, and what is wrong with it."""

    stream_seq: int
    account: str | None
    sequence: int | None
    reason: str

    def __str__(self) -> str:
        where = f"stream sequence {self.stream_seq}"
        if self.account is not None:
            where += f" (account {self.account}, sequence {self.sequence})"
        return f"{where}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream_seq": self.stream_seq,
            "account": self.account,
            "sequence": self.sequence,
            "reason": self.reason,
        }


@dataclass
class ChainChecker:
    """Feeds messages one by one so a caller can print while it verifies.

    A foreign message (services.common.eventlog skips the same ones) becomes a finding,
    and the chains of the real events around it are verified as if it were not there.
    """

    events: int = 0
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)  # account -> (seq, hash)
    findings: list[Finding] = field(default_factory=list)

    @property
    def accounts(self) -> int:
        return len(self.heads)

    def feed(self, stream_seq: int, data: bytes, subject: str | None = None) -> Problem | None:
        """The chain break this event is, if any; `subject` None skips the subject check."""
        raw, why = parse_event(data, subject)
        if raw is None:
            self.findings.append(Finding(stream_seq, subject, why))
            return None
        account, sequence = raw["stream_id"], raw["sequence"]
        expected_seq, expected_prev = self.heads.get(account, (0, GENESIS_HASH))

        def problem(reason: str) -> Problem:
            return Problem(stream_seq, account, sequence, reason)

        if sequence != expected_seq + 1:
            return problem(f"sequence {sequence} where {expected_seq + 1} was expected")
        if raw["prev_hash"] != expected_prev:
            what = "the genesis hash" if expected_seq == 0 else f"the hash of {expected_seq}"
            return problem(f"prev_hash {_short(raw['prev_hash'])} is not {what}")
        actual = chain_hash(raw)
        if raw["hash"] != actual:
            return problem(
                f"hash {_short(raw['hash'])} does not match the content ({_short(actual)}): "
                "the event was altered"
            )
        self.heads[account] = (sequence, raw["hash"])
        self.events += 1
        return None


def verify_chain(events: Iterable[tuple[int, bytes]]) -> Problem | None:
    """The first break in any account's chain, or None when every chain holds (messages
    that are not events are findings, not breaks: see ChainChecker)."""
    checker = ChainChecker()
    for stream_seq, data in events:
        if (found := checker.feed(stream_seq, data)) is not None:
            return found
    return None


def parse_event(data: bytes, subject: str | None = None) -> tuple[dict[str, Any] | None, str]:
    """The envelope as a dict, or None and why it is not an event (contracts.stored)."""
    try:
        raw = json.loads(data)
    except ValueError:
        return None, "not JSON"
    why = envelope_problem(raw, subject)
    return (None, why) if why is not None else (raw, "")


def _short(digest: Any) -> str:
    text = str(digest)
    return text[:12] + "…" if len(text) > 12 else text
