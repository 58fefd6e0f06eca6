"""Request/reply plumbing every service shares: strict parsing, one reply shape, readiness."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel, ValidationError

from contracts import replies
from contracts.replies import ErrorCode
from contracts.strictjson import DuplicateKey, check_unique_keys
from services.common.errors import Refused, describe

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nats.aio.client import Client

log = logging.getLogger("keyledger")
M = TypeVar("M", bound=BaseModel)
MAX_REQUEST_BYTES = 64 * 1024


def parse(model: type[M], body: bytes, *, max_bytes: int = MAX_REQUEST_BYTES) -> M:
    """Validate the raw body ourselves, so bad input gets an answer instead of a time-out.

    A key repeated in an object is refused: pydantic alone would keep the last value, and a
    proxy that checked the first one would have approved another request than the one run.
    """
    if len(body) > max_bytes:
        raise Refused(ErrorCode.INVALID_REQUEST, f"request over {max_bytes} bytes")
    try:
        check_unique_keys(body)
        return model.model_validate_json(body)
    except DuplicateKey as exc:
        raise Refused(ErrorCode.INVALID_REQUEST, str(exc)) from None
    except ValidationError as exc:
        raise Refused(ErrorCode.INVALID_REQUEST, describe(exc)) from None


async def respond(name: str, work: Callable[[], Awaitable[BaseModel | dict[str, Any]]]) -> bytes:
    """The one reply shape; a refusal or a failure is an answer too, never a time-out.

    `work` is called here, so a refusal raised while parsing the request is caught too.
    """
    try:
        result = await work()
    except Refused as exc:
        return replies.error(exc.code, exc.message)
    except Exception as exc:
        log.error("%s failed: %s", name, type(exc).__name__, exc_info=exc)
        return replies.error(ErrorCode.UNAVAILABLE, f"{name} could not be completed; retry")
    if isinstance(result, BaseModel):
        return replies.ok(result)
    # the same shape as replies.ok for plain dicts (hot query paths), times as ISO 8601 with Z
    return orjson.dumps({"ok": True, "result": result}, option=orjson.OPT_UTC_Z)


async def wait_routable(nc: Client, subjects: list[str], *, attempts: int = 1000) -> None:
    """Return once a request to each subject is answered (an empty body is refused).

    A flushed SUB is not always routable at once under load (seen: NoResponders on the
    first request), so a service counts as ready only after this.
    """
    for subject in subjects:
        for _ in range(attempts):
            try:
                await nc.request(subject, b"", timeout=1.0)
                break
            except (NoRespondersError, NatsTimeoutError):
                await asyncio.sleep(0.01)


class OwnConnection:
    """A service runtime's own NATS connection, set when it starts."""

    _nc: Client | None = None

    @property
    def connection(self) -> Client:
        if self._nc is None:
            raise RuntimeError("the runtime is not started")
        return self._nc
