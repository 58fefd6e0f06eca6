"""Why a reminder email was not delivered, and whether retrying can help."""

from __future__ import annotations


class DeliveryError(Exception):
    """A message was not accepted. `permanent`: retrying cannot help (a 5xx for this message);
    `broken`: the session is unusable, so the rest of the batch waits for the next sweep."""

    def __init__(self, reason: str, *, permanent: bool = False, broken: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.permanent = permanent
        self.broken = broken
