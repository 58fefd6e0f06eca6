"""The NATS URL setting: one server, or a comma-separated list of a cluster's servers."""

from __future__ import annotations


def servers(url: str) -> list[str]:
    """nats-py takes a list; KEYLEDGER_NATS_URL and nats.url hold the list comma-separated."""
    return [part.strip() for part in url.split(",") if part.strip()]
