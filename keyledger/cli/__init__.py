"""The `keyledger` command line: `app` (the root command) and `main` (the console script)."""

from keyledger.cli.root import app, main

__all__ = ["app", "main"]
