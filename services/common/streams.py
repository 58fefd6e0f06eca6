"""Declaring a stream as its producer: create when missing, refuse a weaker existing one."""

from __future__ import annotations

from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from contracts.streams import StreamSpec


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
    )


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, replicas: int = 1) -> None:
    """Create the stream when missing; never silently rewrite an existing one."""
    wanted = stream_config(spec, replicas)
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(wanted)
        return
    have = info.config
    problems = [
        f"{field}={getattr(have, field)!r} (expected {getattr(wanted, field)!r})"
        for field in ("subjects", "storage", "max_age", "deny_delete", "deny_purge", "num_replicas")
        if getattr(have, field) != getattr(wanted, field)
    ]
    if problems:
        raise StreamMismatch(f"stream {spec.name} has unexpected settings: " + ", ".join(problems))


def stream_sequence(msg: Msg) -> int:
    """The stream sequence from the ack subject: ~8x cheaper than building msg.metadata."""
    tokens = msg.reply.split(".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(tokens[5])
    if len(tokens) >= 11:  # the same with <domain>.<account hash> after ACK (and a token)
        return int(tokens[7])
    return msg.metadata.sequence.stream
