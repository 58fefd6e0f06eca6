"""What the notifier commands build on: a group with a default command, --as-of, the call."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from contracts.calendar import SPAN, add_months, in_span
from keyledger.cli_common import Target, connect, run_async

_RELATIVE = re.compile(r"\+(\d+)(d|w|mo|y)")


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


def parse_as_of(text: str | None, now: datetime | None = None) -> datetime | None:
    """`now`, `+10d`, `+2w`, `+5mo`, `+1y` (calendar months, UTC), or an ISO date / date-time."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    text = text.strip()
    if text == "now":
        return now
    if found := _RELATIVE.fullmatch(text):
        count, unit = int(found[1]), found[2]
        try:
            if unit in ("d", "w"):
                return in_span(now + timedelta(days=count * (7 if unit == "w" else 1)))
            return in_span(add_months(now, count * (12 if unit == "y" else 1)))
        except (OverflowError, ValueError):  # +999999y: past datetime's own range
            raise ValueError(SPAN) from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "not a date: use YYYY-MM-DD, an ISO date-time, now, or +10d / +2w / +5mo / +1y"
        ) from None
    return in_span(moment)  # a naive time is UTC


def _as_of_option(value: str | None) -> str | None:
    """Typer callback: a bad date is a usage error (exit 2); sent as an absolute UTC time."""
    try:
        moment = parse_as_of(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return moment.isoformat() if moment else None


AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        callback=_as_of_option,
        metavar="DATE",
        help="as if it were then: YYYY-MM-DD, ISO date-time, now, +10d, +2w, +5mo, +1y",
    ),
]


def ask(target: Target, subject: str, body: dict[str, Any], timeout: float = 5.0) -> Any:
    """One request to the notifier; refusals exit 1, no answer exits 3."""

    async def exchange() -> dict[str, Any]:
        async with await connect(target, request_timeout=timeout) as client:
            return await client.request(subject, body)

    return run_async(target, exchange)
