"""Bare nats-py echo responder for bench/verify.py: the raw baseline for keys.verify."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING

import nats

if TYPE_CHECKING:
    from nats.aio.msg import Msg

SUBJECT = "bench.echo"
QUEUE = "q"


async def serve(url: str, size: int, max_seconds: float) -> None:
    """Answer every request with `size` bytes until SIGTERM/SIGINT or `max_seconds` pass."""
    reply = b"x" * size
    nc = await nats.connect(url, name="bench-echo")

    async def on_msg(msg: Msg) -> None:
        # the same shape as services.common.responder.BareResponder inline: answer in the callback
        if msg.reply:
            await msg.respond(reply)

    await nc.subscribe(SUBJECT, queue=QUEUE, cb=on_msg)
    await nc.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max_seconds)
    await nc.drain()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("size", type=int, help="reply payload size in bytes")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="stop by itself after")
    args = parser.parse_args()
    asyncio.run(serve(args.url, args.size, args.max_seconds))


if __name__ == "__main__":
    main()
