"""Fresh names for test data, so tests sharing a server or a database never meet."""

from __future__ import annotations

import uuid


def new_account(prefix: str = "acct", *, length: int = 8) -> str:
    """An account id nobody else uses: `acct-1a2b3c4d`."""
    return f"{prefix}-{uuid.uuid4().hex[:length]}"


def db_name() -> str:
    """A database or schema name: lowercase, starts with a letter, fits PostgreSQL."""
    return f"kl_{uuid.uuid4().hex[:16]}"
