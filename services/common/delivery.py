"""What a JetStream message's ack subject says about its delivery, read without msg.metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from nats.aio.msg import Msg


class Delivery(NamedTuple):
    times: int  # 1: its first delivery
    stream_seq: int
    consumer_seq: int


def delivery(msg: Msg) -> Delivery:
    tokens = msg.reply.split(".")
    # $JS.ACK.<stream>.<consumer>.<count>.<sseq>.<cseq>.<ts>.<pending>, or the same with
    # <domain>.<account hash> after ACK (and a token at the end)
    at = 4 if len(tokens) == 9 else 6
    return Delivery(int(tokens[at]), int(tokens[at + 1]), int(tokens[at + 2]))


def unbroken(msgs: list[Msg], next_consumer_seq: int | None) -> bool:
    """True when `msgs` (in stream order) are first deliveries whose consumer sequences
    carry on from `next_consumer_seq` without a hole: the consumer gave nothing in between
    to anyone else, so no message of its filter lies between them in the stream. A filtered
    consumer's messages are far apart in the stream, so this saves a read per message."""
    if next_consumer_seq is None:
        return False
    for expected, msg in enumerate(msgs, next_consumer_seq):
        found = delivery(msg)
        if found.times != 1 or found.consumer_seq != expected:
            return False
    return True
