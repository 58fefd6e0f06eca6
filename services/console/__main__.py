"""`python -m services.console --host H --port P`: the console under uvicorn, no access log."""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from services.console.settings import ConsoleSettings


def main() -> None:
    defaults = ConsoleSettings()
    parser = argparse.ArgumentParser(prog="python -m services.console")
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    args = parser.parse_args()
    # the app factory reads its settings from the environment: the flags win over it
    os.environ["KEYLEDGER_HOST"], os.environ["KEYLEDGER_PORT"] = args.host, str(args.port)
    logging.basicConfig(level=defaults.log_level, format="%(asctime)s %(name)s %(message)s")
    # no access log: a request line carries the query string, and setup links carry a token
    uvicorn.run(
        "services.console.app:factory",
        factory=True,
        host=args.host,
        port=args.port,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_config=None,
    )


if __name__ == "__main__":
    main()
