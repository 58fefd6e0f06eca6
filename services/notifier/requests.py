"""Request decoding and the one reply shape: bad input gets an error, never a time-out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contracts import replies
from contracts.replies import ErrorCode

log = logging.getLogger("keyledger.notifier")
M = TypeVar("M", bound=BaseModel)
MAX_REQUEST_BYTES = 64 * 1024


class Refused(Exception):
    """A request answered with an error: `code` is the stable reply code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def parse(model: type[M], body: bytes) -> M:
    """Validate a request; messages name fields, never echo values."""
    if len(body) > MAX_REQUEST_BYTES:
        raise Refused(ErrorCode.INVALID_REQUEST, f"request over {MAX_REQUEST_BYTES} bytes")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise Refused(ErrorCode.INVALID_REQUEST, problems) from None


async def respond(name: str, work: Callable[[], Awaitable[BaseModel | dict[str, Any]]]) -> bytes:
    """Turn a use case's outcome into the reply; unexpected failures say `unavailable`."""
    try:
        return replies.ok(await work())
    except Refused as exc:
        return replies.error(exc.code, exc.message)
    except Exception as exc:
        log.error("%s failed: %s", name, type(exc).__name__, exc_info=exc)
        return replies.error(ErrorCode.UNAVAILABLE, f"{name} could not be completed; retry")
