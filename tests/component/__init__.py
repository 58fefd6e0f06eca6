"""Component tests: one service through TestNatsBroker and in-memory SQLite, no servers."""
