"""The one command group with a default command: `calls ACCOUNT` means `calls list ACCOUNT`."""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup


class DefaultCommandGroup(TyperGroup):
    """A group whose first argument, when it names no sub-command, goes to `default_command`:
    `notifications alice` runs `notifications list alice`, `notifications read ...` runs read.
    (An argument that is also a sub-command's name needs the explicit form.)

    `default_usage`, when set, is what the group's usage line shows before the sub-commands.
    """

    default_command = ""
    default_usage = ""

    # ctx is typer's vendored click Context, which typer does not export: typed loosely
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        if not self.default_usage:
            return list(super().collect_usage_pieces(ctx))
        return [f"{self.default_usage} | COMMAND [ARGS]..."]
