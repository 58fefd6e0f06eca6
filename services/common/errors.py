"""Refusals with a stable reply code: pure, so domain modules can raise them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

    from contracts.replies import ErrorCode


class Refused(Exception):
    """A request answered with an error: `code` is the stable reply code."""

    def __init__(self, code: ErrorCode | str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def describe(exc: ValidationError) -> str:
    """Field names and reasons only: an input value is never echoed (it could be a secret)."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)
    )
