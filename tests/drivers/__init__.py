"""Drivers: code that runs, starts or talks to a part of the system for tests (no fixtures)."""
