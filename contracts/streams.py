"""Stream settings as data: what a producer declares and what its consumers may expect."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamSpec:
    """What a producer declares for its stream; consumers bind without changing it."""

    name: str
    subjects: tuple[str, ...]
    max_age_seconds: float = 0
    duplicate_window_seconds: float = 120
    deny_delete: bool = True
    deny_purge: bool = True
    # (source, destination) of the stream's subject transform: the subject it stores under
    transform: tuple[str, str] | None = None
