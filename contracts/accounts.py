"""The NATS accounts keyledger runs in, and how a service reads who sent a request."""

from __future__ import annotations

# The streams and the three services live in SERVICES; every other identity lives in an
# account of its own kind and reaches SERVICES only through the service imports it needs.
SERVICES = "SERVICES"
GATEWAYS = "GATEWAYS"
FRONTENDS = "FRONTENDS"  # operators (the CLI) and the web console
AUDITORS = "AUDITORS"

# Stamped by nats-server on a request that crossed a service import (with `share: true`
# the requester's user too); a client cannot forge it across an account boundary.
REQUEST_INFO_HEADER = "Nats-Request-Info"
