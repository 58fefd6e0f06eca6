"""What the notifier commands build on: --as-of and the call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from keyledger.cli.common import Target, connect, run_async
from keyledger.cli.times import as_of_option
from keyledger.client.notifier import NotifierClient

AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        callback=as_of_option,
        metavar="DATE",
        help="as if it were then: YYYY-MM-DD, ISO date-time, now, +10d, +2w, +5mo, +1y",
    ),
]


def ask(
    target: Target,
    work: Callable[[NotifierClient], Awaitable[dict[str, Any]]],
    timeout: float = 5.0,
) -> Any:
    """One request to the notifier; refusals exit 1, no answer exits 3."""

    async def exchange() -> dict[str, Any]:
        async with await connect(target, request_timeout=timeout) as client:
            return await work(client.notifier)

    return run_async(target, exchange)
