"""The KEYS stream as the keys service's event store: the shared event log, under its old name."""

from __future__ import annotations

from services.common.eventlog import WRONG_LAST_SEQUENCE, Conflict, EventLog, Stored

# one implementation serves KEYS and NOTIFY (services.common.eventlog); these names stay
# because the keys service and its tests import them from here
EventStore = EventLog

__all__ = ["WRONG_LAST_SEQUENCE", "Conflict", "EventStore", "Stored"]
