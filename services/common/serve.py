"""serve(): one FastStream request/reply subscriber that parses, handles and responds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from faststream.nats.annotations import NatsMessage  # noqa: TC002  (read at run time by FastStream)
from pydantic import BaseModel

from services.common.requests import parse, respond

if TYPE_CHECKING:
    from faststream.nats import NatsBroker

M = TypeVar("M", bound=BaseModel)
Result = BaseModel | dict[str, Any]
Headers = Mapping[str, str]
Handler = Callable[[M, Headers], Awaitable[Result]]


def serve(
    broker: NatsBroker,
    subject: str,
    model: type[M],
    handler: Handler[M],
    *,
    queue: str,
    name: str,
    workers: int = 1,
    description: str | None = None,
    empty_body: bytes | None = None,
) -> None:
    """Answer `subject`: the body parsed strictly into `model`, `handler` given it and the
    message headers (the keys service reads the requester's identity from them), the result
    or refusal in the one reply shape. `name` is the word error messages and logs use.
    `empty_body` is what an empty request stands for (health probes send nothing); without
    it an empty body is refused like any other malformed one."""

    @broker.subscriber(
        subject,
        queue=queue,
        max_workers=workers,
        title=subject,
        description=description or f"{model.__name__}; replies with contracts.replies.Reply",
    )
    async def answer(msg: NatsMessage) -> bytes:
        async def work() -> Result:
            body = msg.body or empty_body or msg.body
            return await handler(parse(model, body), msg.headers)

        return await respond(name, work)
