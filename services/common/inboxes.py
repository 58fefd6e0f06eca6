"""Answers go to inboxes only: a request cannot aim a service's reply at a stream subject."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from faststream import BaseMiddleware
from faststream.response import PublishCommand

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger("keyledger")

# `_INBOX` and `_INBOX_<identity>` (contracts.connection.inbox_prefix); `_R_` is where a
# server maps the reply of a request imported from another NATS account. No stream
# captures a subject starting with "_" (contracts/: keys.events.>, calls.recorded.>, ...).
INBOX_PREFIXES = ("_INBOX.", "_INBOX_", "_R_.")


def answerable(reply: str | None) -> bool:
    """True when `reply` is an inbox.

    NATS checks no permission on a request's reply subject, and the keys service may
    publish to keys.events.>: were it to answer any reply subject, a `keys.cmd.reveal`
    sent with reply `keys.events.x` would store the revealed key in KEYS for good.
    """
    return reply is not None and reply.startswith(INBOX_PREFIXES)


class InboxRepliesOnly(BaseMiddleware[PublishCommand, Any]):
    """NatsBroker(middlewares=[InboxRepliesOnly]): a FastStream subscriber's answer is
    dropped, with a warning, unless it goes to an inbox (see `answerable`)."""

    async def publish_scope(
        self, call_next: Callable[[PublishCommand], Awaitable[Any]], cmd: PublishCommand
    ) -> Any:
        if answerable(cmd.destination):
            return await call_next(cmd)
        log.warning("reply to %r not sent: replies go to inboxes only", cmd.destination)
        return None
