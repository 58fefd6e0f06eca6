"""`keyledger up`'s web console: its child process, its URL file, and --dev's demo sign-in."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from contracts.replies import ErrorCode
from keyledger.client import KeyledgerClient, Refused, Unreachable
from keyledger.deploy.permissions import CONSOLE_OPERATOR
from keyledger.local.children import ServiceSpec
from keyledger.local.gateway import HOST

if TYPE_CHECKING:
    from pathlib import Path

    from contracts.connection import Credentials

MODULE = "services.console"
URL_FILE = "console.url"
# factory: the module run with `python -m`; it connects as the FRONTENDS operator `console`
CONSOLE = ServiceSpec("console", MODULE, "", "console.db", identity=CONSOLE_OPERATOR)
DEMO_USER, DEMO_EMAIL, DEMO_ACCOUNT = "demo", "demo@example.com", "demo"


def installed(module: str = MODULE) -> bool:
    """Whether the console can run here (a checkout without it still runs everything else)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package missing
        return False


def console_command(port: int, module: str = MODULE) -> list[str]:
    """The console on loopback; it keeps no access log (query strings, forms: never logged)."""
    return [sys.executable, "-m", module, "--host", HOST, "--port", str(port)]


def write_url(data_dir: Path, url: str) -> None:
    tmp = data_dir / f"{URL_FILE}.tmp"
    tmp.write_text(url + "\n")
    tmp.replace(data_dir / URL_FILE)  # readers (`keyledger console user add`) never see half


def remove_url(data_dir: Path) -> None:
    (data_dir / URL_FILE).unlink(missing_ok=True)


async def demo_sign_in(
    module: str, nats_url: str, credentials: Credentials | None, db_url: str, console_url: str
) -> list[str]:
    """--dev: the account `demo` owned by `demo` (opened unless it exists), and demo's
    one-time setup link from the console `module`; the lines to print, whatever went wrong."""
    lines = []
    try:
        async with await KeyledgerClient.connect(nats_url, credentials=credentials) as client:
            await client.open_account(DEMO_ACCOUNT, DEMO_USER, DEMO_EMAIL)
    except Refused as exc:
        if exc.code != ErrorCode.ACCOUNT_EXISTS:
            lines.append(f"console: no demo account ({exc.message})")
    except Unreachable as exc:
        lines.append(f"console: no demo account ({exc})")
    try:
        link = await setup_link(f"{module}.users", db_url, console_url)
    except ImportError as exc:
        lines.append(f"console: no sign-in link for demo ({exc})")
    except Exception as exc:  # the console's own refusal, e.g. a demo user set up already
        lines.append(f"console: no sign-in link for demo ({type(exc).__name__}: {exc})")
    else:
        lines.append(f"console: sign in as demo: {link}")
    return lines


async def setup_link(users_module: str, db_url: str, console_url: str) -> str:
    """A new console user `demo` and its setup link, through the console's own users module
    (`setup_link_for_new_user(db_url, user, email, console_url, now) -> str`)."""
    # imported here: the rest of `keyledger up` runs without the console installed
    users = importlib.import_module(users_module)
    if not hasattr(users, "setup_link_for_new_user"):
        raise ImportError(f"{users_module} has no setup_link_for_new_user")
    made = users.setup_link_for_new_user(
        db_url, DEMO_USER, DEMO_EMAIL, console_url, datetime.now(UTC)
    )
    return str(await made if inspect.isawaitable(made) else made)
