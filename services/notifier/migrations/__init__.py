"""Alembic history of the notifier service's tables (run by services.common.migrate)."""
