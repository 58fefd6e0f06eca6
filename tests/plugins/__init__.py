"""Pytest fixtures per part, loaded by tests/conftest.py; they build on tests/drivers/."""
