"""The keys service through TestNatsBroker, on fakes and in-memory SQLite."""
