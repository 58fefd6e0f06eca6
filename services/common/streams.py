"""Declaring a stream as its producer: create when missing, refuse a weaker existing one."""

from __future__ import annotations

import logging
from enum import Enum
from typing import TYPE_CHECKING

from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from contracts.streams import StreamSpec

log = logging.getLogger("keyledger")


class StreamMismatch(RuntimeError):
    """The stream exists with settings that would weaken its guarantees; refuse to run."""


def stream_config(spec: StreamSpec, replicas: int) -> api.StreamConfig:
    return api.StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        max_age=spec.max_age_seconds,
        duplicate_window=spec.duplicate_window_seconds,
        deny_delete=spec.deny_delete,
        deny_purge=spec.deny_purge,
        num_replicas=replicas,
        allow_direct=True,
        subject_transform=(
            api.SubjectTransform(src=spec.transform[0], dest=spec.transform[1])
            if spec.transform
            else None
        ),
    )


# Any difference here weakens a guarantee (durability, retention, immutability) or breaks
# routing, so it is refused; fewer replicas or a shorter dedup window are refused below.
_EXACT = ("subjects", "storage", "retention", "max_age", "deny_delete", "deny_purge")


def mismatches(have: api.StreamConfig, wanted: api.StreamConfig) -> tuple[list[str], list[str]]:
    """(dangerous, harmless) differences between an existing stream and what we declare."""
    dangerous = [_describe(have, wanted, name) for name in _EXACT if _differs(have, wanted, name)]
    harmless: list[str] = []
    for name in ("num_replicas", "duplicate_window"):
        mine, theirs = getattr(wanted, name) or 0, getattr(have, name) or 0
        if theirs < mine:
            dangerous.append(_describe(have, wanted, name))
        elif theirs > mine:  # stronger than asked: keep it, a cluster may run R3 under R1 settings
            harmless.append(_describe(have, wanted, name))
    return dangerous, harmless


def _differs(have: api.StreamConfig, wanted: api.StreamConfig, name: str) -> bool:
    return bool(getattr(have, name) != getattr(wanted, name))


def _describe(have: api.StreamConfig, wanted: api.StreamConfig, name: str) -> str:
    return f"{name}={_show(getattr(have, name))} (expected {_show(getattr(wanted, name))})"


def _show(value: object) -> str:
    # a config read back from the server holds plain strings where ours holds enums
    if isinstance(value, Enum):
        return str(value.value)
    return value if isinstance(value, str) else repr(value)


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, replicas: int = 1) -> None:
    """Create the stream when missing; never silently rewrite an existing one."""
    wanted = stream_config(spec, replicas)
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(wanted)
        return
    dangerous, harmless = mismatches(info.config, wanted)
    if dangerous:
        raise StreamMismatch(
            f"refusing to start: stream {spec.name} exists with weaker or different settings: "
            + ", ".join(dangerous)
            + ". keyledger never changes an existing stream; fix it with an admin tool "
            "(e.g. `nats stream edit`) or correct KEYLEDGER_STREAM_REPLICAS."
        )
    if harmless:
        log.warning("stream %s differs harmlessly: %s", spec.name, ", ".join(harmless))


def stream_sequence(msg: Msg) -> int:
    """The stream sequence from the ack subject: ~8x cheaper than building msg.metadata."""
    tokens = msg.reply.split(".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(tokens[5])
    if len(tokens) >= 11:  # the same with <domain>.<account hash> after ACK (and a token)
        return int(tokens[7])
    return msg.metadata.sequence.stream


def ack_sequences(reply: bytes) -> tuple[int, int, int]:
    """(stream sequence, consumer sequence, messages pending) from a delivery's ack subject."""
    tokens = reply.split(b".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(tokens[5]), int(tokens[6]), int(tokens[8])
    # $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
    # and a random token after it
    return int(tokens[7]), int(tokens[8]), int(tokens[10])
