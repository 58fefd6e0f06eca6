"""`python -m tests.drivers.fake_console --host H --port P`: answers GET with what it was given."""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

ENV_ECHOED = (
    "KEYLEDGER_NATS_URL",
    "KEYLEDGER_DB_URL",
    "KEYLEDGER_DATA_DIR",
    "KEYLEDGER_NATS_CREDENTIALS_FILE",
)


class Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"argv": sys.argv[1:], "pid": os.getpid(), "env": _env()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # no access log, as the console


def _env() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in ENV_ECHOED}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    given = parser.parse_args()
    HTTPServer((given.host, given.port), Echo).serve_forever()


if __name__ == "__main__":
    main()
