"""What the notifier commands build on: a group with a default command, --as-of, the call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from keyledger.cli.common import Target, connect, run_async
from keyledger.cli.times import as_of_option
from keyledger.client.notifier import NotifierClient


class DefaultCommandGroup(TyperGroup):
    """A group whose first argument, when it names no sub-command, goes to `default_command`:
    `notifications alice` runs `notifications list alice`, `notifications read ...` runs read."""

    default_command = ""
    default_usage = ""

    # ctx is typer's vendored click Context, which typer does not export: typed loosely
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [f"{self.default_usage} | COMMAND [ARGS]..."]


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
